import pytest

from graysteps.errors import InvalidInput
from graysteps.model.strategy import Strategy, from_label, parse_strategy


@pytest.mark.parametrize("weight, expected", [("0", 0), ("20", 20), ("100", 100), (55, 55), (" 7 ", 7)])
def test_weight_takes_an_integer_from_0_to_100(weight, expected):
    assert parse_strategy("weight", weight) == Strategy("weight", expected)


@pytest.mark.parametrize("weight", ["101", "-1", "abc", "12.5", "", "1e2", "0x10", 101, -1, 12.5, True, "--5"])
def test_weight_rejects_anything_else_naming_the_value_and_the_range(weight):
    with pytest.raises(InvalidInput, match=r"--weight .* is not allowed: use an integer from 0 to 100"):
        parse_strategy("weight", weight)


def test_weight_strategy_needs_a_weight_and_others_refuse_one():
    with pytest.raises(InvalidInput, match="needs --weight N"):
        parse_strategy("weight", None)
    with pytest.raises(InvalidInput, match="only allowed with --strategy weight"):
        parse_strategy("balanced", "50")


@pytest.mark.parametrize("name", ["canary", "Whitelist", "", None])
def test_unknown_strategies_are_refused_listing_the_known_ones(name):
    with pytest.raises(InvalidInput, match="use one of whitelist, weight, balanced, linked, promote, rollback"):
        parse_strategy(name)


@pytest.mark.parametrize("strategy", [Strategy("weight", 0), Strategy("weight", 20), Strategy("balanced"),
                                      Strategy("whitelist"), Strategy("linked"), Strategy("promote"), Strategy("rollback")])
def test_the_recorded_label_reads_back(strategy):
    assert from_label(strategy.label) == strategy


def test_labels_graysteps_does_not_write_read_back_as_none():
    assert from_label("weight=abc") is None
    assert from_label("teleport") is None
