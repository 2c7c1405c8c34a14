"""Steady traffic through the lab's gateway, recorded per second and profile.

    with Traffic("http://127.0.0.1:PORT/", "test-a", rate=100) as traffic:
        ...
        traffic.timeline()   # [(second, {"gray": (answers, errors), "prod": (...)}), ...]

Requests leave on a fixed schedule (`rate` per second, spread over a few
keep-alive connections), so a slow or failing version does not slow the
offered load. Every answer is kept as (time, profile, status): the benchmark
measures when gray stopped getting traffic, the demo charts error rates.
The one thing to know: an answer's profile is its `x-graysteps-profile`
header, so a 5xx that Envoy made itself (no backend) counts as profile "?".
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Mapping
from urllib.parse import urlsplit

from graysteps.adapters.probe import PROFILE_HEADER, NoDelayHTTPConnection


class Traffic:
    def __init__(self, url: str, host: str, rate: float = 100.0, *, headers: Mapping[str, str] | None = None,
                 workers: int = 4):
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.path = parts.path or "/"
        self.host, self.rate, self.workers = host, float(rate), workers
        self.headers = {"Host": host, **(headers or {})}
        self.answers: list[tuple[float, str, int]] = []  # (monotonic time, profile, status)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.t0 = 0.0

    def start(self) -> "Traffic":
        self.t0 = time.monotonic()
        for i in range(self.workers):
            t = threading.Thread(target=self._run, args=(i,), name=f"traffic-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> "Traffic":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self, worker: int) -> None:
        interval = self.workers / self.rate
        due = self.t0 + worker * (1.0 / self.rate)
        conn = None
        while not self._stop.is_set():
            wait = due - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                break
            due += interval
            if conn is None:
                conn = NoDelayHTTPConnection(*self.address, timeout=10)
            try:
                conn.request("GET", self.path, headers=self.headers)
                answer = conn.getresponse()
                answer.read()
                profile, status = answer.headers.get(PROFILE_HEADER) or "?", answer.status
                if answer.will_close:
                    conn.close()
                    conn = None
            except (OSError, ConnectionError, Exception):  # noqa: BLE001 - a refused request is data too
                profile, status = "?", 0
                conn.close()
                conn = None
            with self._lock:
                self.answers.append((time.monotonic(), profile, status))
        if conn is not None:
            conn.close()

    def since(self, t: float) -> list[tuple[float, str, int]]:
        with self._lock:
            return [a for a in self.answers if a[0] >= t]

    def last_seen(self, profile: str) -> float | None:
        """Monotonic time of the last answer served by `profile`."""
        with self._lock:
            for at, p, _ in reversed(self.answers):
                if p == profile:
                    return at
        return None

    def timeline(self, bucket: float = 1.0) -> list[tuple[float, dict[str, tuple[int, int]]]]:
        """Per `bucket` seconds since start: {profile: (answers, errors)}."""
        with self._lock:
            answers = list(self.answers)
        rows: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        for at, profile, status in answers:
            cell = rows[int((at - self.t0) / bucket)][profile]
            cell[0] += 1
            cell[1] += status >= 500 or status == 0
        return [(k * bucket, {p: (v[0], v[1]) for p, v in rows[k].items()}) for k in sorted(rows)]
