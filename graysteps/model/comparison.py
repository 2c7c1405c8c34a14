"""A sequential test comparing gray with prod: are gray's bad requests (errors,
or requests slower than a latency bound) more frequent than `max_ratio` times
prod's?

Counts arrive in batches (one per Prometheus poll); after each batch
`RatioTest.decide()` says FAIL, PASS or CONTINUE. The one thing to know: it
looks only at *bad* requests and asks which side each came from. Given the
requests each side served in a batch, and that m bad ones happened in it, the
number from gray is (close to) Binomial(m, pi) with

    pi = r n_g / (r n_g + n_p)        r = gray's bad rate / prod's bad rate

so "gray is no worse than max_ratio times prod" is pi <= pi0 (r = max_ratio),
whatever the absolute rates are. For an alternative pi1 > pi0 the product of
per-batch likelihood ratios (pi1/pi0)^x ((1-pi1)/(1-pi0))^(m-x) is a
nonnegative supermartingale under that hypothesis; a mixture over a grid of
alternatives (odds x2 ... x64) is too, so by Ville's inequality the chance it
ever reaches 1/alpha is at most alpha. The test may therefore be looked at
after every batch and stopped at the first FAIL, at level alpha overall.

PASS is the mirror test (gray's bad rate clearly *below* max_ratio times
prod's). When bad requests are rare on both sides that evidence takes long;
the schedule then advances at the end of the step's pause once gray served the
minimum number of requests without a FAIL (`enough`), as Flagger does.
Poisson rather than binomial counting makes the test slightly conservative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from graysteps.model.sequential import Decision

ODDS_MULTIPLIERS = (2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


@dataclass(frozen=True)
class Counts:
    """Cumulative counters of one destination: requests served and bad ones among them."""

    requests: float
    bad: float

    @property
    def bad_rate(self) -> float:
        return self.bad / self.requests if self.requests > 0 else float("nan")


@dataclass(frozen=True)
class RatioVerdict:
    decision: Decision
    max_ratio: float
    confidence: float
    gray: Counts
    prod: Counts
    evidence: float  # log e-value against "gray no worse than max_ratio x prod" (FAIL at log(1/alpha))
    enough: bool  # gray served the minimum number of requests

    def describe(self, what: str = "bad requests") -> str:
        def rate(c: Counts) -> str:
            return f"{c.bad_rate * 100:.2f}% ({c.bad:g}/{c.requests:g})" if c.requests else "no requests"

        seen = f"gray {rate(self.gray)}, prod {rate(self.prod)}"
        if self.decision is Decision.FAIL:
            return f"{what}: gray is worse than {self.max_ratio:g}x prod with {self.confidence * 100:g}% confidence: {seen}"
        if self.decision is Decision.PASS:
            return f"{what}: gray is within {self.max_ratio:g}x prod with {self.confidence * 100:g}% confidence: {seen}"
        if self.enough:
            return f"{what}: no sign gray is worse than {self.max_ratio:g}x prod: {seen}"
        return f"{what}: not enough gray requests yet: {seen}"


class RatioTest:
    """Sequential test of gray's bad rate against `max_ratio` x prod's, at `confidence`."""

    def __init__(self, max_ratio: float, confidence: float = 0.99, *, min_requests: int = 100):
        if not 1.0 <= max_ratio <= 100.0:
            raise ValueError(f"max_ratio must be within 1..100, got {max_ratio}")
        if not 0.5 <= confidence < 1.0:
            raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
        if min_requests < 1:
            raise ValueError(f"min_requests must be at least 1, got {min_requests}")
        self.max_ratio, self.confidence, self.min_requests = float(max_ratio), float(confidence), int(min_requests)
        self.threshold = math.log(1.0 / (1.0 - confidence))
        self.log_prior = -math.log(len(ODDS_MULTIPLIERS))
        self._worse = [0.0] * len(ODDS_MULTIPLIERS)  # log wealth per alternative: gray worse
        self._better = [0.0] * len(ODDS_MULTIPLIERS)  # mirror: gray better
        self.gray = Counts(0.0, 0.0)
        self.prod = Counts(0.0, 0.0)

    def add(self, gray: Counts, prod: Counts) -> "RatioTest":
        """One batch: what each side served (and got wrong) since the previous batch."""
        for c in (gray, prod):
            if c.requests < 0 or c.bad < 0:
                raise ValueError(f"counts must not be negative, got {c}")
        self.gray = Counts(self.gray.requests + gray.requests, self.gray.bad + gray.bad)
        self.prod = Counts(self.prod.requests + prod.requests, self.prod.bad + prod.bad)
        m = gray.bad + prod.bad
        # Exposure from all requests so far: request counts carry no information about badness.
        if m <= 0 or self.gray.requests <= 0 or self.prod.requests <= 0:
            return self
        x = min(gray.bad, m)
        odds0 = self.max_ratio * self.gray.requests / self.prod.requests
        pi0 = odds0 / (1.0 + odds0)
        for i, c in enumerate(ODDS_MULTIPLIERS):
            self._worse[i] += _log_lr(x, m, pi0, odds0 * c)
            self._better[i] += _log_lr(x, m, pi0, odds0 / c)
        return self

    def evidence(self, worse: bool = True) -> float:
        """log of the mixture e-value against gray being no worse (worse=True) / no better."""
        logs = self._worse if worse else self._better
        top = max(logs)
        return self.log_prior + top + math.log(sum(math.exp(v - top) for v in logs))

    def decide(self) -> RatioVerdict:
        enough = self.gray.requests >= self.min_requests
        decision = Decision.CONTINUE
        if enough and self.evidence(True) >= self.threshold:
            decision = Decision.FAIL
        elif enough and self.evidence(False) >= self.threshold:
            decision = Decision.PASS
        return RatioVerdict(decision, self.max_ratio, self.confidence, self.gray, self.prod,
                            self.evidence(True), enough)


def _log_lr(x: float, m: float, pi0: float, odds1: float) -> float:
    """log of (pi1/pi0)^x ((1-pi1)/(1-pi0))^(m-x), pi1 = odds1 / (1 + odds1)."""
    pi1 = odds1 / (1.0 + odds1)
    return x * (math.log(pi1) - math.log(pi0)) + (m - x) * (math.log1p(-pi1) - math.log1p(-pi0))
