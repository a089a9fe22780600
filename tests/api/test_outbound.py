"""The outbound boundary in-process: the address policy, URL parsing, sealing, and `fetch_bytes` against
real HTTPS servers on loopback (a CA made here, trusted through SSL_CERT_FILE like an operator would)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mutoscope import outbound
from mutoscope.config import Settings
from mutoscope.errors import InvalidRequest, PayloadTooLarge
from mutoscope.sealing import SealError, SecretBox

REFUSED = [
    "http://169.254.169.254/latest/meta-data/", "http://localhost:6379/", "http://[::1]:5432/", "http://10.0.0.1/",
    "http://127.0.0.1/", "http://2130706433/", "http://0x7f.1/", "http://127.1/",
    "http://0/", "http://0.0.0.0/", "http://[::]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/", "http://[fe80::1]/", "http://[fd00:ec2::254]/", "http://[fc00::1]/",
    "http://[2002:7f00:1::]/", "http://[64:ff9b::a00:1]/", "http://[ff02::1]/", "http://224.0.0.1/",
    "http://100.100.100.200/", "http://100.64.0.1/", "http://192.168.1.1/", "http://172.16.0.1/",
    "http://198.18.0.1/", "http://192.0.2.1/", "http://240.0.0.1/", "http://255.255.255.255/",
    "http://localhost./", "http://LOCALHOST:80/", "http://db.localhost:5432/",
]
INVALID = ["http://[::1", "http://[::1]:99999/", "http://example.com:0/", "http://user:pw@example.com/",
           "http://user@example.com/", "ftp://example.com/", "http:///path", "http://exa mple.com/",
           "http://1.2.3.4.5/", "http://[fe80::1%25eth0]/", "http://exa%41mple.com/", "javascript:alert(1)",
           "http://0177.0.0.1/"]  # dotted octal: httpx's own parser rejects it, before any DNS


def settings(tmp_path, allow=()):
    return Settings(data_dir=tmp_path, outbound_allow=list(allow))


@pytest.mark.parametrize("url", REFUSED)
def test_private_loopback_and_metadata_destinations_are_refused(tmp_path, url):
    with pytest.raises(InvalidRequest) as e:
        outbound.check_destination(url, settings(tmp_path), schemes=("http", "https"), param="url")
    assert (e.value.param, e.value.code) == ("url", "url_not_allowed")


@pytest.mark.parametrize("url", INVALID)
def test_malformed_urls_are_refused_by_the_parser(tmp_path, url):
    with pytest.raises(InvalidRequest) as e:
        outbound.check_destination(url, settings(tmp_path), schemes=("http", "https"), param="url")
    assert (e.value.param, e.value.code) == ("url", "invalid_url")


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8",
                                     "64:ff9b::808:808", "2002:808:808::1"])
def test_public_addresses_pass(address):
    assert outbound.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["::ffff:10.0.0.1", "2002:a00:1::", "64:ff9b::7f00:1", "::ffff:0.0.0.0",
                                     "::1", "::", "fe80::1", "ff0e::1", "fd12:3456::1", "2001:db8::1",
                                     "127.255.255.254", "169.254.169.254", "0.0.0.0", "100.100.100.200"])
def test_non_public_addresses_fail(address):
    assert not outbound.is_public(ipaddress.ip_address(address))


def test_legacy_numeric_hosts_are_read_as_ipv4():
    for host in ("2130706433", "0x7f.1", "0177.0.0.1", "127.1", "0x7f000001"):
        assert outbound.literal_ip(host) == ipaddress.ip_address("127.0.0.1")
    assert outbound.literal_ip("example.com") is None


def test_allow_list_opens_exactly_what_it_names(tmp_path):
    policy = outbound.policy_for(settings(tmp_path, ["127.0.0.1:8080", "10.0.0.0/8", "[::1]:5432", "*.corp.test",
                                                     "169.254.0.0/16"]))
    ip = ipaddress.ip_address
    assert policy.permits("x", ip("127.0.0.1"), 8080)
    assert not policy.permits("x", ip("127.0.0.1"), 8081)
    assert policy.permits("x", ip("::ffff:127.0.0.1"), 8080)  # the socket reaches the same address
    assert policy.permits("x", ip("10.9.8.7"), 1)
    assert policy.permits("x", ip("::1"), 5432) and not policy.permits("x", ip("::1"), 5433)
    assert policy.permits("hooks.corp.test", ip("192.168.0.9"), 443)
    assert not policy.permits("corp.test.evil", ip("192.168.0.9"), 443)
    assert policy.permits("x", ip("169.254.1.1"), 80)
    # A range does not open the metadata service inside it; only an entry naming it does.
    assert not policy.permits("x", ip("169.254.169.254"), 80)
    assert outbound.policy_for(settings(tmp_path, ["169.254.169.254"])).permits("x", ip("169.254.169.254"), 80)


def test_bad_allow_list_entries_fail_at_startup(tmp_path, monkeypatch):
    monkeypatch.setenv("MUTOSCOPE_OUTBOUND_ALLOW", '["10.0.0.0/8", "not a host!"]')
    with pytest.raises(ValueError, match="not a host"):
        Settings(data_dir=tmp_path)
    monkeypatch.setenv("MUTOSCOPE_OUTBOUND_ALLOW", '["[::1]:70000"]')
    with pytest.raises(ValueError, match="invalid port"):
        Settings(data_dir=tmp_path)


def test_the_guard_vets_at_connect_time_not_only_when_checked(tmp_path):
    """Nothing here calls check_destination: the client itself refuses to dial loopback by name."""
    hits = []
    srv = _server(lambda h: (hits.append(h.path), h.send_response(204), h.end_headers()), tls=False)
    try:
        with outbound.client(settings(tmp_path), timeout=5) as http, pytest.raises(outbound.Blocked):
            outbound.post(http, f"http://localhost:{srv.server_port}/", content=b"{}", headers={})
        with outbound.client(settings(tmp_path, [f"127.0.0.1:{srv.server_port}"]), timeout=5) as http:
            assert outbound.post(http, f"http://localhost:{srv.server_port}/", content=b"{}", headers={}) == 204
        assert hits == ["/"]
    finally:
        srv.shutdown()


def test_sealed_secrets_open_only_with_their_key_and_row(tmp_path, monkeypatch):
    box = SecretBox.load(settings(tmp_path))
    key_file = tmp_path / "secret-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    sealed = box.seal("whsec_abc", context="we_1")
    assert "whsec_abc" not in sealed and box.open(sealed, context="we_1") == "whsec_abc"
    assert SecretBox.load(settings(tmp_path)).open(sealed, context="we_1") == "whsec_abc"  # same key file
    with pytest.raises(SealError):
        box.open(sealed, context="we_2")  # copied into another row
    monkeypatch.setenv("MUTOSCOPE_SECRET_KEY", "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=")
    key_file.unlink()
    env_box = SecretBox.load(Settings(data_dir=tmp_path))
    assert not key_file.exists()  # the environment's key is used, and no file is made beside it
    with pytest.raises(SealError):
        env_box.open(sealed, context="we_1")
    monkeypatch.setenv("MUTOSCOPE_SECRET_KEY", "too-short")
    with pytest.raises(ValueError, match="MUTOSCOPE_SECRET_KEY"):
        SecretBox.load(Settings(data_dir=tmp_path))


# fetch_bytes against real HTTPS servers


def _cert(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mutoscope test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_pem, key_pem = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert_pem, key_pem


def _server(handle, tls=True, cert=None):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            handle(self)

        do_POST = do_GET

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*cert)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def https(tmp_path, monkeypatch):
    """Start HTTPS servers on loopback whose certificate the client trusts; each records its requests."""
    cert = _cert(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    servers = []

    def start(handle):
        srv = _server(lambda h: (srv.hits.append(h.path), handle(h)), cert=cert)
        srv.hits = []
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()


def _body(data: bytes):
    def handle(h):
        h.send_response(200)
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
    return handle


def _redirect(location: str):
    def handle(h):
        h.send_response(302)
        h.send_header("location", location)
        h.send_header("content-length", "0")
        h.end_headers()
    return handle


def test_fetch_bytes_refuses_loopback_by_default_and_never_connects(tmp_path, https):
    srv = https(_body(b"png"))
    with pytest.raises(InvalidRequest) as e:
        outbound.fetch_bytes(f"https://127.0.0.1:{srv.server_port}/a.png", max_bytes=100, timeout=5,
                             settings=settings(tmp_path))
    assert e.value.param == "input_reference.image_url" and "127.0.0.1" not in e.value.message
    assert srv.hits == []
    allowed = settings(tmp_path, [f"127.0.0.1:{srv.server_port}"])
    assert outbound.fetch_bytes(f"https://127.0.0.1:{srv.server_port}/a.png", max_bytes=100, timeout=5,
                                settings=allowed) == b"png"


def test_a_redirect_hop_to_a_private_address_is_refused(tmp_path, https):
    inner = https(_body(b"secret"))
    outer = https(_redirect(f"https://127.0.0.1:{inner.server_port}/internal"))
    allowed = settings(tmp_path, [f"127.0.0.1:{outer.server_port}"])  # the first hop only
    with pytest.raises(InvalidRequest) as e:
        outbound.fetch_bytes(f"https://127.0.0.1:{outer.server_port}/img", max_bytes=100, timeout=5,
                             settings=allowed)
    assert e.value.param == "input_reference.image_url"
    assert outer.hits == ["/img"] and inner.hits == []  # the second hop was never dialled
    both = settings(tmp_path, [f"127.0.0.1:{outer.server_port}", f"127.0.0.1:{inner.server_port}"])
    assert outbound.fetch_bytes(f"https://127.0.0.1:{outer.server_port}/img", max_bytes=100, timeout=5,
                                settings=both) == b"secret"


def test_fetch_bytes_is_https_only_on_every_hop_and_bounded(tmp_path, https):
    big = https(_body(b"x" * 5000))
    down = https(_redirect("http://127.0.0.1:1/plain"))
    allowed = settings(tmp_path, ["127.0.0.1"])
    with pytest.raises(InvalidRequest, match="https"):
        outbound.fetch_bytes(f"http://127.0.0.1:{big.server_port}/", max_bytes=10, timeout=5, settings=allowed)
    with pytest.raises(InvalidRequest, match="https"):
        outbound.fetch_bytes(f"https://127.0.0.1:{down.server_port}/", max_bytes=10, timeout=5, settings=allowed)
    with pytest.raises(PayloadTooLarge) as e:
        outbound.fetch_bytes(f"https://127.0.0.1:{big.server_port}/", max_bytes=1000, timeout=5, settings=allowed)
    assert e.value.param == "input_reference.image_url"
    with pytest.raises(InvalidRequest):  # a redirect loop ends after five hops
        loop = https(lambda h: _redirect(f"https://127.0.0.1:{loop.server_port}/again")(h))
        outbound.fetch_bytes(f"https://127.0.0.1:{loop.server_port}/", max_bytes=10, timeout=5, settings=allowed)
    assert len(loop.hits) == outbound.MAX_REDIRECTS + 1


def test_environment_proxies_are_not_used(tmp_path, https, monkeypatch):
    """A proxy would do the connect for us and apply no policy: the client must ignore HTTPS_PROXY."""
    srv = https(_body(b"direct"))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    assert outbound.fetch_bytes(f"https://127.0.0.1:{srv.server_port}/", max_bytes=100, timeout=5,
                                settings=settings(tmp_path, ["127.0.0.1"])) == b"direct"


def test_a_trickling_receiver_is_cut_off_at_the_total_time_limit(tmp_path):
    """Each byte arrives inside the read timeout, so only a limit on the whole request ends it."""
    stop = threading.Event()

    def trickle(h):
        for byte in b"HTTP/1.1 200 OK\r\nx-slow: " + b"a" * 100:
            if stop.wait(0.2):
                return
            h.wfile.write(bytes([byte]))
            h.wfile.flush()

    srv = _server(trickle, tls=False)
    try:
        with outbound.client(settings(tmp_path, ["127.0.0.1"]), timeout=1.0) as http:
            t0 = time.monotonic()
            with pytest.raises(httpx.TimeoutException):
                outbound.post(http, f"http://127.0.0.1:{srv.server_port}/", content=b"{}", headers={})
            assert time.monotonic() - t0 < 3
    finally:
        stop.set()
        srv.shutdown()


def test_image_url_to_a_loopback_server_is_refused_through_the_api(server, https):
    """The reported finding, through the live server: `input_reference.image_url` at https://127.0.0.1:PORT
    is refused with a 400 naming the param, and the loopback server never sees a connection."""
    srv = https(_body(b"\x89PNG"))
    with server.http() as h:
        r = h.post("/v1/videos", json={"prompt": "p", "input_reference": {
            "image_url": f"https://127.0.0.1:{srv.server_port}/a.png"}})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == "input_reference.image_url" and err["code"] == "invalid_url"
    assert srv.hits == []
