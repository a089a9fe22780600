"""Webhooks: signed video.completed / video.failed events, verified with the openai SDK's own checker."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import openai
import pytest

from tests.conftest import wait_for

FAST = {"num_inference_steps": 2}


class Receiver:
    """A real HTTP server on loopback that records deliveries; it can fail the first N of them."""

    def __init__(self, fail_first: int = 0):
        self.received: list[tuple[bytes, dict]] = []
        self.fail_left = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                if outer.fail_left > 0:
                    outer.fail_left -= 1
                    self.send_response(500)
                else:
                    outer.received.append((body, {k.lower(): v for k, v in self.headers.items()}))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [json.loads(b) for b, _ in self.received]

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def receiver():
    r = Receiver(fail_first=1)
    yield r
    r.close()


def test_completed_and_failed_events_are_signed_and_retried(client, receiver):
    ep = client.webhooks.create(name="my app", url=receiver.url, event_types=["video.completed", "video.failed"])
    assert ep.signing_secret.startswith("whsec_") and ep.object == "webhook_endpoint"
    assert client.webhooks.retrieve(ep.id).url == receiver.url
    try:
        ok = client.videos.create_and_poll(prompt="webhook me", extra_body=FAST)
        bad = client.videos.create_and_poll(prompt="no weights", model="ltx-2")
        # The first delivery got a 500: it is retried with backoff, not lost.
        wait_for(lambda: len(receiver.received) >= 2, timeout=60)
        for body, headers in receiver.received:
            client.webhooks.verify_signature(body, headers, secret=ep.signing_secret)  # raises if forged
        got = {e["type"]: e["data"]["id"] for e in receiver.events()}
        assert got == {"video.completed": ok.id, "video.failed": bad.id}
        assert all(e["object"] == "event" and e["id"].startswith("evt_") for e in receiver.events())
        with pytest.raises(openai.InvalidWebhookSignatureError):
            body, headers = receiver.received[0]
            client.webhooks.verify_signature(body.replace(b"video", b"vidoe"), headers, secret=ep.signing_secret)
        rotated = client.webhooks.rotate_secret(ep.id)
        assert rotated.signing_secret != ep.signing_secret
        result = client.webhooks.test(ep.id, event_type="video.completed")
        assert result.status_code == 204
        client.webhooks.verify_signature(*receiver.received[-1], secret=rotated.signing_secret)
    finally:
        client.webhooks.delete(ep.id)
    with pytest.raises(openai.NotFoundError):
        client.webhooks.retrieve(ep.id)


def test_endpoints_are_private_and_validated(server, client, other_user_key):
    ep = client.webhooks.create(name="mine", url="https://example.invalid/hook", event_types=["video.completed"])
    mallory = server.client(other_user_key)
    with pytest.raises(openai.NotFoundError):
        mallory.webhooks.retrieve(ep.id)
    assert ep.id not in [e.id for e in mallory.webhooks.list().data]
    with pytest.raises(openai.BadRequestError) as e:
        client.webhooks.create(name="x", url="ftp://nope", event_types=["video.completed"])
    assert e.value.param == "url"
    with pytest.raises(openai.BadRequestError) as e:
        client.webhooks.create(name="x", url="https://ok.invalid", event_types=["batch.completed"])
    assert e.value.param == "event_types"
    client.webhooks.delete(ep.id)
