import pytest

from graysteps.errors import InvalidInput
from graysteps.model.tenants import is_valid_tenant_id, validate_tenant_id, validate_tenant_ids
from tests.fixtures.whitelist import INJECTIONS


@pytest.mark.parametrize("value", ["t", "tenant-001", "Acme.Corp_01:eu-west", "x" * 64, "0", "a:b:c", "...", "-"])
def test_valid_tenant_ids_are_accepted(value):
    assert validate_tenant_id(value) == value


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_and_out_of_alphabet_ids_are_rejected_naming_the_value(value):
    assert not is_valid_tenant_id(value)
    with pytest.raises(InvalidInput) as caught:
        validate_tenant_id(value)
    assert repr(value)[:40] in caught.value.message
    assert "allowed are 1-64 characters" in caught.value.message


def test_non_strings_are_rejected():
    for value in (None, 1, b"t1", ["t1"]):
        assert not is_valid_tenant_id(value)


def test_validating_a_list_drops_duplicates_and_keeps_order():
    assert validate_tenant_ids(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]


def test_one_bad_id_rejects_the_whole_list():
    with pytest.raises(InvalidInput, match="DROP"):
        validate_tenant_ids(["ok-1", "'; DROP TABLE x; --", "ok-2"])
