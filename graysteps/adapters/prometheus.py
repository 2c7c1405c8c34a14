"""Prometheus' HTTP API, as progressive delivery reads it: instant queries
returning one number.

    prom = PrometheusClient("http://127.0.0.1:9090")
    prom.scalar('sum(envoy_cluster_upstream_rq_xx{envoy_cluster_name=~"..."})')  # -> float (0.0 when no series)

Every read is bounded: a time limit per request (`timeout`) and a size limit
on the answer (`MAX_ANSWER_BYTES`). The one thing to know: every failure
(unreachable, HTTP error, a PromQL error, an answer that is not one number)
is a `PrometheusError` whose message is one line, naming the server with any
credentials in its URL masked, and what to do.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request

from graysteps.adapters.urls import mask_url, url_problem
from graysteps.errors import GraystepsError

MAX_ANSWER_BYTES = 1 << 20
DEFAULT_TIMEOUT = 5.0


class PrometheusError(GraystepsError):
    """Prometheus could not answer a query."""


class PrometheusClient:
    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT, step: str = "progress"):
        problem = url_problem(url)
        if problem:
            raise PrometheusError(f"Prometheus URL {mask_url(url)!r} is not allowed: {problem}", step=step)
        parts = urllib.parse.urlsplit(url)
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.step = step
        self._headers = {"Accept": "application/json"}
        if parts.username is not None:  # basic auth from the URL, sent as a header, never shown
            import base64

            token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
            self.url = urllib.parse.urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[1], parts.path.rstrip("/"), "", ""))
        self.shown = mask_url(url.rstrip("/"))

    def _fail(self, what: str) -> PrometheusError:
        return PrometheusError(f"Prometheus at {self.shown}: {what}", step=self.step)

    def query(self, promql: str) -> list[dict]:
        """The `data` of an instant query (a vector's samples, or a scalar as one sample)."""
        body = urllib.parse.urlencode({"query": promql}).encode()
        request = urllib.request.Request(self.url + "/api/v1/query", data=body, headers={
            **self._headers, "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                raw = answer.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as e:
            detail = _error_text(e.read(4096))
            raise self._fail(f"answered HTTP {e.code} to {_short(promql)}{': ' + detail if detail else ''}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise self._fail(f"unreachable ({reason}); check the URL (--prometheus / analysis.prometheus) and that it runs") from None
        if len(raw) > MAX_ANSWER_BYTES:
            raise self._fail(f"answer to {_short(promql)} is larger than {MAX_ANSWER_BYTES >> 20} MiB; aggregate the query (sum)")
        try:
            data = json.loads(raw)
        except ValueError:
            raise self._fail("answered something that is not JSON; is this Prometheus' API?") from None
        if not isinstance(data, dict) or data.get("status") != "success":
            raise self._fail(f"query {_short(promql)} failed: {_error_text(raw)}")
        result = data.get("data", {})
        if result.get("resultType") == "scalar":
            return [{"metric": {}, "value": result.get("result")}]
        return list(result.get("result") or [])

    def scalar(self, promql: str) -> float:
        """One number: the query's single sample; 0.0 when it returns no series (nothing counted yet)."""
        samples = self.query(promql)
        if not samples:
            return 0.0
        if len(samples) > 1:
            raise self._fail(f"query {_short(promql)} returned {len(samples)} series; wrap it in sum(...) to get one number")
        try:
            value = float(samples[0]["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            raise self._fail(f"query {_short(promql)} returned a sample that is not a number") from None
        if math.isnan(value):
            return 0.0
        return value


def _short(promql: str, limit: int = 160) -> str:
    one_line = " ".join(promql.split())
    return repr(one_line if len(one_line) <= limit else one_line[: limit - 1] + "…")


def _error_text(raw: bytes) -> str:
    try:
        data = json.loads(raw)
        return " ".join(str(data.get("error") or data.get("errorType") or "").split())[:300]
    except (ValueError, AttributeError):
        return " ".join(raw[:300].decode("utf-8", "replace").split())
