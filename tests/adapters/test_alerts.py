"""Webhook alerts: each format's payload reaches a real HTTP receiver; a dead webhook only warns."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from graysteps.adapters.alerts import Event, Notifier, Webhook, payload
from graysteps_lab.world.ports import free_port


class Receiver:
    """A webhook endpoint on loopback recording what it was sent; `answer` sets its reply."""

    def __init__(self, answer: tuple[int, dict] = (200, {}), delay: float = 0.0):
        self.received: list[tuple[str, dict]] = []
        self.answer, self.delay = answer, delay
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((self.path, json.loads(body)))
                time.sleep(outer.delay)
                status, reply = outer.answer
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


EVENT = Event("rollback", "checkout", "success-rate: gray 5.1% vs prod 0.1%", "weight 20", ("test-a",))


def test_every_format_reaches_its_webhook(receiver):
    hooks = [Webhook(fmt, receiver.url(f"/{fmt}/token-{fmt}")) for fmt in ("json", "slack", "dingtalk", "wecom")]
    notifier = Notifier(hooks)
    notifier.send(EVENT)
    got = dict(receiver.received)
    assert got["/json/token-json"]["kind"] == "rollback" and got["/json/token-json"]["services"] == ["test-a"]
    assert "rollback" in got["/slack/token-slack"]["text"] and "weight 20" in got["/slack/token-slack"]["text"]
    for fmt in ("dingtalk", "wecom"):
        assert got[f"/{fmt}/token-{fmt}"] == {"msgtype": "text", "text": {"content": EVENT.line()}}
    assert len(notifier.sent) == 4 and not notifier.failed


def test_a_robot_refusing_with_errcode_is_a_failure_and_a_dead_webhook_only_warns(receiver):
    receiver.answer = (200, {"errcode": 310000, "errmsg": "keywords not in content"})
    warnings: list[str] = []
    dead = f"http://127.0.0.1:{free_port()}/hook/SECRET-TOKEN"
    notifier = Notifier([Webhook("dingtalk", receiver.url("/robot/send?access_token=SECRET")), Webhook("slack", dead)],
                        warn=warnings.append, timeout=1.0)
    t0 = time.monotonic()
    notifier.send(EVENT)
    assert time.monotonic() - t0 < 3
    assert len(notifier.failed) == 2 and "errcode 310000" in notifier.failed[0][2]
    assert len(warnings) == 2 and not any("SECRET" in w for w in warnings)


def test_a_slow_webhook_does_not_hold_the_caller_beyond_its_time_limit():
    slow = Receiver(delay=5.0)
    try:
        notifier = Notifier([Webhook("json", slow.url("/slow"))], timeout=0.5)
        t0 = time.monotonic()
        notifier.send(EVENT)
        assert time.monotonic() - t0 < 2.0 and notifier.failed
    finally:
        slow.close()


def test_unknown_format_is_refused():
    with pytest.raises(ValueError):
        payload("teams", EVENT)
