"""The sequential gray-vs-prod test: stops early on a bad gray, stays quiet on a healthy one."""

from __future__ import annotations

import random

import pytest

from graysteps.model.comparison import Counts, RatioTest
from graysteps.model.sequential import Decision


def simulate(gray_rate: float, prod_rate: float, gray_share: float, seconds: int, seed: int, rps: int = 100):
    """Seconds until FAIL (None if never) for Bernoulli traffic at `rps`, one batch per second."""
    rng = random.Random(seed)
    test = RatioTest(2.0, 0.99, min_requests=50)
    for second in range(1, seconds + 1):
        gray_n = sum(rng.random() < gray_share for _ in range(rps))
        prod_n = rps - gray_n
        gray_bad = sum(rng.random() < gray_rate for _ in range(gray_n))
        prod_bad = sum(rng.random() < prod_rate for _ in range(prod_n))
        test.add(Counts(gray_n, gray_bad), Counts(prod_n, prod_bad))
        if test.decide().decision is Decision.FAIL:
            return second
    return None


def test_a_gray_failing_5_percent_against_prod_at_0_1_is_caught_within_seconds():
    times = [simulate(0.05, 0.001, 0.2, 60, seed) for seed in range(20)]
    assert all(t is not None for t in times)
    assert sorted(times)[len(times) // 2] <= 10


def test_a_healthy_gray_is_not_failed():
    assert [simulate(0.001, 0.001, 0.2, 120, 1000 + seed) for seed in range(20)] == [None] * 20


def test_no_verdict_before_the_minimum_of_gray_requests():
    test = RatioTest(2.0, 0.99, min_requests=100)
    test.add(Counts(40, 40), Counts(400, 0))  # every gray request failed, but only 40 of them
    verdict = test.decide()
    assert verdict.decision is Decision.CONTINUE and not verdict.enough
    test.add(Counts(60, 60), Counts(600, 0))
    assert test.decide().decision is Decision.FAIL


def test_gray_clearly_better_passes_and_the_ratio_is_relative_to_prod():
    test = RatioTest(2.0, 0.99, min_requests=10)
    for _ in range(30):  # prod fails 10%, gray 1%: gray is better than 2x prod
        test.add(Counts(100, 1), Counts(100, 10))
    assert test.decide().decision is Decision.PASS
    same = RatioTest(2.0, 0.99, min_requests=10)
    for _ in range(30):  # both fail 10%: gray is within 2x prod, never FAIL
        same.add(Counts(100, 10), Counts(100, 10))
    assert same.decide().decision is not Decision.FAIL


@pytest.mark.parametrize("ratio", [0.5, 101])
def test_ratio_out_of_range_is_refused(ratio):
    with pytest.raises(ValueError):
        RatioTest(ratio)
