"""The sequential share test: stops early when the answer is clear, and is wrong at most alpha of the time."""

from __future__ import annotations

import random

import pytest

from graysteps.model.sequential import Decision, ShareTest


def run(true_share: float, expected: float = 0.2, tolerance: float = 0.05, *, seed: int, batch: int = 100,
        max_trials: int = 20000) -> ShareTest:
    rnd = random.Random(seed)
    test = ShareTest(expected, tolerance, 0.99, max_trials=max_trials)
    while test.decide().decision is Decision.CONTINUE:
        test.add(sum(rnd.random() < true_share for _ in range(batch)), batch)
    return test


def test_a_correct_share_passes_well_before_the_bound():
    tests = [run(0.2, seed=s) for s in range(40)]
    assert all(t.decide().decision is Decision.PASS for t in tests)
    assert max(t.trials for t in tests) < 5000
    assert sum(t.trials for t in tests) / len(tests) < 2000


def test_a_far_off_share_fails_within_a_few_hundred_requests():
    tests = [run(0.5, seed=s) for s in range(40)]
    assert all(t.decide().decision is Decision.FAIL for t in tests)
    assert max(t.trials for t in tests) <= 500


def test_a_share_just_outside_the_band_never_passes_more_often_than_alpha():
    # 0.26 is outside 20 ± 5: a PASS would be a wrong answer.
    verdicts = [run(0.26, seed=s, max_trials=4000).decide().decision for s in range(200)]
    assert verdicts.count(Decision.PASS) <= 4  # alpha = 1 % of 200 is 2; allow sampling noise


def test_the_interval_covers_the_true_share_at_every_look():
    misses = 0
    for seed in range(200):
        rnd = random.Random(seed)
        test = ShareTest(0.2, 0.05, 0.99)
        for _ in range(30):
            test.add(sum(rnd.random() < 0.2 for _ in range(100)), 100)
            low, high = test.interval()
            if not low <= 0.2 <= high:
                misses += 1
                break
    assert misses <= 4  # anytime-valid at 99 %: at most ~1 % of sequences ever miss


def test_the_request_bound_gives_an_inconclusive_answer():
    test = ShareTest(0.2, 0.05, 0.99, max_trials=300).add(75, 300)  # 25 %: on the band's edge
    verdict = test.decide()
    assert verdict.decision is Decision.INCONCLUSIVE
    assert "not yet clear after 300 requests" in verdict.describe()


def test_the_verdict_reports_observed_share_interval_and_confidence():
    verdict = ShareTest(0.2, 0.05, 0.99).add(200, 1000).decide()
    text = verdict.describe()
    assert "20.0% (200/1000)" in text and "99% interval" in text
    low, high = verdict.interval
    assert 0.15 < low < 0.2 < high < 0.25


@pytest.mark.parametrize("args", [(0.0, 0.05), (1.0, 0.05), (0.2, 0.0), (0.2, 0.05, 0.3)])
def test_impossible_settings_are_refused(args):
    with pytest.raises(ValueError):
        ShareTest(*args)
