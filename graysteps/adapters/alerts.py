"""Webhook notifications of a progressive release: on start, each step, a
rollback and the finish.

    notifier = Notifier([Webhook("slack", url)], out=print_warning)
    notifier.send(Event("rollback", plan="checkout-2", step="weight 20", text="success-rate: gray 5.1% vs prod 0.1%"))

Payloads: `json` (the event as a flat object), `slack` ({"text": ...}, also
accepted by Mattermost and Teams' incoming webhooks), `dingtalk` and `wecom`
({"msgtype": "text", "text": {"content": ...}}, the robots of DingTalk and
WeCom). The one thing to know: `send` never raises and never waits longer than
its time limit: a failed webhook is reported as a warning line (with the URL's
secret parts masked) and the release, or its rollback, goes on.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable, Sequence

FORMATS = ("json", "slack", "dingtalk", "wecom")
TIMEOUT = 3.0
ICONS = {"start": "▶", "step": "→", "rollback": "⟲", "finish": "✔", "failed": "✖", "paused": "⏸"}


@dataclass(frozen=True)
class Event:
    kind: str  # start, step, paused, rollback, finish, failed
    plan: str
    text: str
    step: str = ""
    services: tuple[str, ...] = ()
    at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def line(self) -> str:
        where = f" [{self.step}]" if self.step else ""
        return f"{ICONS.get(self.kind, '•')} graysteps {self.kind}: plan {self.plan}{where}: {self.text}"


def payload(fmt: str, event: Event) -> dict:
    """The JSON body a webhook of `fmt` accepts for `event`."""
    if fmt == "json":
        return {"source": "graysteps", **asdict(event), "services": list(event.services)}
    if fmt == "slack":
        return {"text": event.line()}
    if fmt in ("dingtalk", "wecom"):
        return {"msgtype": "text", "text": {"content": event.line()}}
    raise ValueError(f"unknown webhook format {fmt!r}; use one of {', '.join(FORMATS)}")


def shown(url: str) -> str:
    """A webhook URL safe to print: scheme, host and path start only (tokens live in paths and queries)."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path.split("/")[1] if parts.path.count("/") else ""
    return f"{parts.scheme}://{parts.hostname or '?'}/{path + '/…' if path else '…'}"


@dataclass(frozen=True)
class Webhook:
    format: str
    url: str
    name: str = ""

    def __repr__(self) -> str:  # never the secret URL
        return f"Webhook({self.format!r}, {shown(self.url)!r})"


def _answer_ok(fmt: str, status: int, body: bytes) -> str | None:
    """None when the webhook accepted the message, else why not.
    DingTalk and WeCom answer 200 with {"errcode": N} on refusal."""
    if not 200 <= status < 300:
        return f"HTTP {status}"
    if fmt in ("dingtalk", "wecom"):
        try:
            code = json.loads(body or b"{}").get("errcode", 0)
        except (ValueError, AttributeError):
            return None
        if code:
            return f"errcode {code}"
    return None


class Notifier:
    """Sends each event to every webhook, in parallel, within `timeout` seconds overall."""

    def __init__(self, webhooks: Sequence[Webhook], *, warn: Callable[[str], None] | None = None,
                 timeout: float = TIMEOUT):
        self.webhooks = list(webhooks)
        self.warn = warn or (lambda line: None)
        self.timeout = timeout
        self.sent: list[tuple[str, str]] = []  # (webhook name, event kind) delivered
        self.failed: list[tuple[str, str, str]] = []  # (webhook name, event kind, why)

    def send(self, event: Event) -> None:
        if not self.webhooks:
            return
        pool = ThreadPoolExecutor(max_workers=len(self.webhooks))
        futures = {pool.submit(self._post, hook, event): hook for hook in self.webhooks}
        done, late = wait(futures, timeout=self.timeout + 1.0)
        pool.shutdown(wait=False, cancel_futures=True)
        for future, hook in futures.items():
            why = "no answer in time" if future in late else future.result()
            name = hook.name or shown(hook.url)
            if why is None:
                self.sent.append((name, event.kind))
            else:
                self.failed.append((name, event.kind, why))
                self.warn(f"warning: webhook {name} ({shown(hook.url)}) did not take the {event.kind} alert: {why}; going on")

    def _post(self, hook: Webhook, event: Event) -> str | None:
        try:
            data = json.dumps(payload(hook.format, event), ensure_ascii=False).encode()
            request = urllib.request.Request(hook.url, data=data, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return _answer_ok(hook.format, answer.status, answer.read(65536))
        except urllib.error.HTTPError as e:
            return f"HTTP {e.code}"
        except Exception as e:  # noqa: BLE001 - an alert never stops a release
            reason = getattr(e, "reason", None) or type(e).__name__
            return str(reason).replace(hook.url, shown(hook.url))[:200]
