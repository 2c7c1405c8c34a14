"""A sequential test of a traffic share: is the gray share N% ± tolerance?

Requests arrive in batches; after each batch `ShareTest.decide()` says PASS,
FAIL or CONTINUE, and the caller stops at the first clear answer or at the
request bound.

The test is a confidence sequence (Robbins' beta-mixture martingale, see
Howard, Ramdas et al., "Time-uniform, nonparametric, nonasymptotic confidence
sequences", 2021). For every candidate share p,

    M_n(p) = B(a + S, b + n - S) / B(a, b) / (p^S (1 - p)^(n - S))

(S gray answers out of n) is a nonnegative martingale with mean 1 when p is
the true share, so by Ville's inequality P(exists n: M_n(p) >= 1/alpha) <= alpha.
The set {p : M_n(p) < 1/alpha} is therefore a confidence interval valid at
every n simultaneously: looking after every batch, and stopping whenever we
like, costs nothing. log M_n(p) is convex in p with its minimum at S/n, so

  * PASS when S/n lies inside [N - tol, N + tol] and both ends are rejected:
    the whole interval lies inside the band, with confidence 1 - alpha;
  * FAIL when S/n lies outside the band and its nearer end is rejected:
    the interval misses the band;
  * at the request bound without either, the answer is INCONCLUSIVE.

The chance that the test ever gives a wrong PASS or FAIL is at most alpha.
The mixing prior is a Beta centred on the expected share whose spread
matches the tolerance: that spends the test's power where the decision is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum


class Decision(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    CONTINUE = "continue"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class ShareVerdict:
    decision: Decision
    expected: float  # share, 0..1
    tolerance: float  # share, 0..1
    confidence: float
    hits: int
    trials: int
    interval: tuple[float, float]  # the confidence sequence's current interval

    @property
    def observed(self) -> float:
        return self.hits / self.trials if self.trials else float("nan")

    def describe(self, what: str = "gray share") -> str:
        low, high = self.interval
        band = f"{self.expected * 100:g}% ± {self.tolerance * 100:g}"
        seen = (f"observed {self.observed * 100:.1f}% ({self.hits}/{self.trials}), "
                f"{self.confidence * 100:g}% interval [{low * 100:.1f}%, {high * 100:.1f}%]")
        if self.decision is Decision.PASS:
            return f"{what} is within {band} with {self.confidence * 100:g}% confidence: {seen}"
        if self.decision is Decision.FAIL:
            return f"{what} is NOT within {band} with {self.confidence * 100:g}% confidence: {seen}"
        return f"{what} vs {band} is not yet clear after {self.trials} requests: {seen}"


class ShareTest:
    """Sequential test of `expected` ± `tolerance` (shares in 0..1) at `confidence`."""

    def __init__(self, expected: float, tolerance: float, confidence: float = 0.99, *, max_trials: int = 20000):
        if not 0.0 < expected < 1.0:
            raise ValueError(f"expected share must be strictly between 0 and 1, got {expected}")
        if not 0.0 < tolerance < 1.0:
            raise ValueError(f"tolerance must be between 0 and 1, got {tolerance}")
        if not 0.5 <= confidence < 1.0:
            raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
        self.expected, self.tolerance, self.confidence = expected, tolerance, confidence
        self.max_trials = max_trials
        self.threshold = math.log(1.0 / (1.0 - confidence))
        # Beta prior with mean `expected` and standard deviation ~ `tolerance`.
        strength = max(expected * (1 - expected) / tolerance**2 - 1.0, 2.0)
        self.a, self.b = expected * strength, (1 - expected) * strength
        self._log_beta_prior = _log_beta(self.a, self.b)
        self.hits = 0
        self.trials = 0

    def add(self, hits: int, trials: int) -> "ShareTest":
        if hits < 0 or trials < hits:
            raise ValueError(f"need 0 <= hits <= trials, got {hits}/{trials}")
        self.hits += hits
        self.trials += trials
        return self

    def log_wealth(self, p: float) -> float:
        """log M_n(p): evidence against the share being exactly p."""
        s, f = self.hits, self.trials - self.hits
        if p <= 0.0:
            return math.inf if s else _log_beta(self.a + s, self.b + f) - self._log_beta_prior
        if p >= 1.0:
            return math.inf if f else _log_beta(self.a + s, self.b + f) - self._log_beta_prior
        return (_log_beta(self.a + s, self.b + f) - self._log_beta_prior
                - s * math.log(p) - f * math.log1p(-p))

    def rejects(self, p: float) -> bool:
        return self.log_wealth(p) >= self.threshold

    def interval(self) -> tuple[float, float]:
        """The current confidence interval (valid at every n at once)."""
        if not self.trials:
            return 0.0, 1.0
        center = self.hits / self.trials
        return self._edge(center, 0.0), self._edge(center, 1.0)

    def _edge(self, inside: float, outside: float) -> float:
        if not self.rejects(outside):
            return outside
        for _ in range(50):  # bisection; log M is convex with its minimum at `inside`
            middle = (inside + outside) / 2
            if self.rejects(middle):
                outside = middle
            else:
                inside = middle
        return inside

    def decide(self) -> ShareVerdict:
        low, high = self.expected - self.tolerance, self.expected + self.tolerance
        decision = Decision.CONTINUE
        if self.trials:
            center = self.hits / self.trials
            if low < center < high:
                if self.rejects(low) and self.rejects(high):
                    decision = Decision.PASS
            elif self.rejects(low if center <= low else high):
                decision = Decision.FAIL
        if decision is Decision.CONTINUE and self.trials >= self.max_trials:
            decision = Decision.INCONCLUSIVE
        return ShareVerdict(decision, self.expected, self.tolerance, self.confidence, self.hits, self.trials,
                            self.interval())


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
