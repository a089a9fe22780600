"""Outbound HTTP: every request the server makes to a URL a user gave it goes through here.

PUT HERE: parsing and vetting user-supplied URLs, the address policy (which networks a user may
make this server talk to, and the operator's allow-list that opens some), the guarded httpx
client, and the two ways rooms use it: `post` (webhooks) and `fetch_bytes` (image downloads).
DO NOT PUT HERE: what is sent or why (webhooks/ signs and retries, videos/ fits images), calls to
services the operator configured (model hubs, S3, the Celery broker): those are trusted and
need no policy.

It is a top-level module, like `config.py` and `errors.py`, because two rooms that must not
import each other (webhooks/ and videos/) both need it, and it imports only those two.

Why connecting is guarded, not only validating: a check of the URL's host followed by an
ordinary connect resolves the name twice, and a DNS answer that changes in between (rebinding)
gets past the check. So, like `advocate` (the requests-based guard), the connection itself
resolves the name once, vets every address, and connects to a vetted address; TLS still checks
the certificate against the URL's host name. That guard sits in httpcore's network backend, under
every request and every redirect hop, and the client ignores proxy variables, which would
otherwise hand the connect to a proxy that applies no policy.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Iterable

import httpcore
import httpx

from mutoscope.errors import InvalidRequest, PayloadTooLarge

if TYPE_CHECKING:
    from mutoscope.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud instance-metadata services hand out credentials to anything that can reach them. They are
# all link-local or private already; they are named so that an allow-list entry for a whole range
# (169.254.0.0/16, fd00::/8) does not open them by accident: only an entry naming the address does.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
    "169.254.170.2",    # AWS ECS task credentials
    "169.254.169.253",  # AWS DNS resolver
    "100.100.100.200",  # Alibaba Cloud
    "fd00:ec2::254",    # AWS over IPv6
))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST_NAME = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$")
# The WHATWG URL standard (and inet_aton) read a host whose last label is a number as IPv4:
# 2130706433, 0x7f.1 and 0177.0.0.1 are all 127.0.0.1.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
MAX_REDIRECTS = 5


class Blocked(Exception):
    """The connection guard refused a destination. Callers turn it into their own error."""


@dataclass(frozen=True)
class AllowEntry:
    """One operator allow-list entry: a network or a host name (`*.` for subdomains), maybe a port."""

    network: Network | None = None
    host: str | None = None
    port: int | None = None

    def matches(self, host: str, ip: IPAddress, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            if ip in METADATA_ADDRESSES and self.network.num_addresses != 1:
                return False
            return ip in self.network
        host = host.rstrip(".").lower()
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host


def parse_allow_entry(entry: str) -> AllowEntry:
    """`10.0.0.0/8`, `127.0.0.1:8080`, `[::1]:5432`, `fd00::/8`, `hooks.internal`, `*.corp.example:443`."""
    text, port = entry.strip(), None
    if text.startswith("["):
        inner, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"outbound allow-list entry {entry!r}: expected ']:PORT'")
            port = rest[1:]
        text = inner
    elif text.count(":") == 1:
        text, port = text.split(":")
    port_number = None
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"outbound allow-list entry {entry!r}: invalid port")
        port_number = int(port)
    try:
        return AllowEntry(network=ipaddress.ip_network(text, strict=False), port=port_number)
    except ValueError:
        pass
    host = text.rstrip(".").lower()
    if not _HOST_NAME.match(host.removeprefix("*.")):
        raise ValueError(f"outbound allow-list entry {entry!r} is neither a network, an address nor a host name")
    return AllowEntry(host=host, port=port_number)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to the IPv4 internet, if any (mapped, 6to4, NAT64)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """True for a globally routable unicast address; False for loopback, private, link-local, shared
    (CGNAT), multicast, unspecified, reserved, documentation and metadata addresses, also when an IPv6
    address wraps one of them (::ffff:127.0.0.1, 2002:7f00:1::, 64:ff9b::a00:1)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        inner = _embedded_ipv4(ip)
        if inner is not None and not is_public(inner):
            return False
        if ip.ipv4_mapped is not None or ip in _NAT64:
            # Judged as the IPv4 address it reaches (Python counts ::ffff:0:0/96 as private and the
            # NAT64 prefix as reserved, but DNS64 on an IPv6-only host hands out 64:ff9b:: for every name).
            return True
    if ip in METADATA_ADDRESSES:
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_loopback
                                 or ip.is_link_local or ip.is_private)


class Policy:
    """Which destinations this server may connect to on a user's behalf: public addresses, plus what the
    operator's allow-list (`MUTOSCOPE_OUTBOUND_ALLOW`) opens."""

    def __init__(self, allow: Iterable[str] = ()):
        self.allow = tuple(parse_allow_entry(e) for e in allow)

    def permits(self, host: str, ip: IPAddress, port: int) -> bool:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # the allow-list speaks of the IPv4 address the socket reaches
        if any(e.matches(host, ip, port) for e in self.allow):
            return True
        return is_public(ip)


@lru_cache(maxsize=8)
def _policy(allow: tuple[str, ...]) -> Policy:
    return Policy(allow)


def policy_for(settings: "Settings") -> Policy:
    return _policy(tuple(settings.outbound_allow))


def literal_ip(host: str) -> IPAddress | None:
    """The address a URL host names without DNS: IPv6/IPv4 literals and the legacy numeric IPv4 forms.

    Raises ValueError for a host that ends in a number but is no valid address (`1.2.3.4.5`)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    labels = host.rstrip(".").lower().split(".")
    if not _NUMERIC_LABEL.match(labels[-1]):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
    except OSError:
        raise ValueError("not an IPv4 address") from None


@dataclass(frozen=True)
class Target:
    url: httpx.URL
    host: str  # ASCII (IDNA) form, no brackets
    port: int


def parse_url(url: str, *, schemes: tuple[str, ...], param: str) -> Target:
    """Parse with the same parser httpx connects with, so the vetted host is the host connected to.
    Raises InvalidRequest naming `param`."""
    allowed = " or ".join(schemes)

    def bad(message: str) -> InvalidRequest:
        return InvalidRequest(f"{param} {message}", param=param, code="invalid_url")

    if not isinstance(url, str) or any(c.isspace() or ord(c) < 32 for c in url):
        raise bad("must be a URL without spaces or control characters.")
    try:
        parsed = httpx.URL(url)
        port = parsed.port  # httpx accepts any number here; checked below
    except (httpx.InvalidURL, ValueError, TypeError):
        raise bad("is not a valid URL.") from None
    if parsed.scheme not in schemes:
        raise bad(f"must be an {allowed} URL.")
    if parsed.userinfo:
        raise bad("must not contain a user name or password.")
    host = parsed.raw_host.decode("ascii", "replace").lower()
    if not host:
        raise bad("must name a host.")
    if port is not None and not 0 < port < 65536:
        raise bad("has an invalid port.")
    try:
        ip = literal_ip(host)
    except ValueError:
        raise bad("has an invalid host.") from None
    if ip is None and not _HOST_NAME.match(host):
        raise bad("has an invalid host.")
    if ip is not None and isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        raise bad("has an invalid host.")
    return Target(url=parsed, host=host, port=port or (443 if parsed.scheme == "https" else 80))


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal resolves to itself, without DNS)."""
    ip = literal_ip(host)
    if ip is not None:
        return [ip]
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        # RFC 6761: these name loopback whatever a resolver says (and some resolvers say nothing).
        return [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[IPAddress] = []
    for *_, sockaddr in infos:
        addr = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if addr not in seen:
            seen.append(addr)
    return seen


def vetted_addresses(policy: Policy, host: str, port: int) -> list[IPAddress]:
    """Resolve once and keep the answers the policy permits; only those are ever dialled. Raises Blocked
    when none is permitted, OSError when the name does not resolve."""
    addresses = resolve(host, port)
    if not addresses:
        raise OSError(f"{host} has no address")
    permitted = [a for a in addresses if policy.permits(host, a, port)]
    if not permitted:
        raise Blocked(f"{host}:{port} resolves only to addresses outside the outbound policy")
    return permitted


def check_destination(url: str, settings: "Settings", *, schemes: tuple[str, ...], param: str) -> Target:
    """Validate a URL a user stores for later (a webhook endpoint): its syntax, and, if its host resolves
    now, where it points. A host that does not resolve yet is accepted; the connection guard vets it again
    whenever it is used."""
    target = parse_url(url, schemes=schemes, param=param)
    try:
        vetted_addresses(policy_for(settings), target.host, target.port)
    except Blocked:
        raise InvalidRequest(f"{param} must point to a public address; this server does not connect to "
                             "loopback, private, link-local or metadata addresses.",
                             param=param, code="url_not_allowed") from None
    except (OSError, UnicodeError):
        pass
    return target


class _DeadlineStream(httpcore.NetworkStream):
    """A connection with a total time limit: per-read timeouts alone let a receiver that trickles one
    byte at a time hold a worker for ever."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float):
        self._inner, self._deadline = inner, deadline

    def _left(self, timeout: float | None) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the request's total time limit passed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, self._left(timeout)),
                               self._deadline)

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.SyncBackend):
    """httpcore's network backend, but every TCP connect resolves, vets and dials a vetted address, and
    the connection lives at most `total` seconds."""

    def __init__(self, policy: Policy, total: float):
        self.policy, self.total = policy, total

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options=None) -> httpcore.NetworkStream:
        deadline = time.monotonic() + self.total
        try:
            addresses = vetted_addresses(self.policy, host, port)
        except (OSError, UnicodeError) as e:
            raise httpcore.ConnectError(f"could not resolve {host}") from e
        last: Exception | None = None
        for ip in addresses:
            try:
                return _DeadlineStream(super().connect_tcp(str(ip), port, timeout, local_address, socket_options),
                                       deadline)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                last = e
        raise last  # type: ignore[misc]


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with the guarded network backend: HTTP/1.1, no proxy, no retries, and no
    keep-alive, so each request gets a fresh connection and its own total time limit.

    Args:
        policy: which destinations may be dialled.
        total: seconds one request (connect, TLS, sending, the whole response) may take.
    """

    def __init__(self, policy: Policy, total: float):
        # trust_env here only lets SSL_CERT_FILE / SSL_CERT_DIR name the CA bundle; proxies are never used.
        super().__init__(trust_env=True, retries=0)
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):
            # httpx keeps its pool in a private attribute; if that ever changes, fail closed, not open.
            raise RuntimeError("this httpx version cannot be guarded; pin httpx<0.29")
        self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(trust_env=True), http1=True,
                                             http2=False, retries=0, max_connections=100,
                                             max_keepalive_connections=0,
                                             network_backend=_GuardedBackend(policy, total))


def client(settings: "Settings", *, timeout: float) -> httpx.Client:
    """A client for user-supplied destinations: guarded connects, each request done within `timeout`
    seconds in all, no redirects followed, no proxies, no .netrc credentials. Thread-safe; close it."""
    return httpx.Client(transport=GuardedTransport(policy_for(settings), total=timeout), trust_env=False,
                        follow_redirects=False, timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))


def post(http: httpx.Client, url: str, *, content: bytes, headers: dict[str, str]) -> int:
    """POST and return the status, reading none of the body. Redirects are not followed (a webhook
    receiver answers for itself). Raises InvalidRequest(param="url") for a URL that is no valid http(s)
    URL, Blocked for a refused destination, httpx.HTTPError for network failures."""
    target = parse_url(url, schemes=("http", "https"), param="url")
    with http.stream("POST", target.url, content=content, headers=headers) as r:
        return r.status_code


def fetch_bytes(url: str, *, max_bytes: int, timeout: float, settings: "Settings",
                param: str = "input_reference.image_url") -> bytes:
    """Download a user-supplied https URL for the videos room (`input_reference.image_url`).

    Follows at most five redirects, each one https and vetted like the first; refuses private, loopback,
    link-local and metadata addresses (unless `MUTOSCOPE_OUTBOUND_ALLOW` opens them) at connect time;
    stops at `max_bytes` (decoded) and after about `timeout` seconds in all. Raises InvalidRequest
    (code invalid_url) or PayloadTooLarge, both naming `param`; the message never says why a connection
    failed, so the answer cannot map a network. Blocking (DNS and network): call it from a worker thread.
    """

    def failed() -> InvalidRequest:
        return InvalidRequest(f"Could not download {param}.", param=param, code="invalid_url")

    deadline = time.monotonic() + timeout
    target = parse_url(url, schemes=("https",), param=param)
    with client(settings, timeout=timeout) as http:
        for _ in range(MAX_REDIRECTS + 1):
            if time.monotonic() > deadline:
                raise failed()
            try:
                with http.stream("GET", target.url) as r:
                    if r.is_redirect:
                        location = r.headers.get("location", "")
                        target = parse_url(str(target.url.join(location)), schemes=("https",), param=param)
                        continue
                    if r.status_code != 200:
                        raise failed()
                    declared = r.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_bytes:
                        raise PayloadTooLarge(f"{param} points to a file over the upload limit.", param=param)
                    buf = bytearray()
                    for chunk in r.iter_bytes():
                        buf.extend(chunk)
                        if len(buf) > max_bytes:
                            raise PayloadTooLarge(f"{param} points to a file over the upload limit.", param=param)
                        if time.monotonic() > deadline:
                            raise failed()
                    return bytes(buf)
            except (Blocked, httpx.HTTPError, httpx.InvalidURL):  # InvalidURL: a Location httpx cannot join
                raise failed() from None
        raise failed()
