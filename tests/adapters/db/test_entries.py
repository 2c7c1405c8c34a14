import pytest
from sqlalchemy import inspect

from graysteps.errors import InvalidInput
from graysteps.adapters.audit.records import read_audit, record_audit
from graysteps.steps.whitelist import add_tenants, list_tenants, remove_tenants
from graysteps.adapters.db.store import read_generation
from tests.fixtures.whitelist import INJECTIONS


def generation(store):
    with store.read() as conn:
        return read_generation(conn)


def test_add_whitelists_new_tenants_and_audits_each_one(store):
    assert add_tenants(store, ["t1", "t2", "t1"], actor="alice", reason="pilot customers") == ["t1", "t2"]
    assert list_tenants(store) == ["t1", "t2"]
    audit = read_audit(store, action="whitelist.add")
    assert [(a.actor, a.subject, a.reason) for a in audit] == [("alice", "t1", "pilot customers"), ("alice", "t2", "pilot customers")]
    assert generation(store) == 1


def test_adding_present_tenants_again_changes_nothing(store):
    add_tenants(store, ["t1"], actor="alice")
    assert add_tenants(store, ["t1"], actor="bob") == []
    assert len(read_audit(store)) == 1
    assert generation(store) == 1


def test_remove_takes_only_present_tenants_off_and_audits_them(store):
    add_tenants(store, ["t1", "t2"], actor="alice")
    assert remove_tenants(store, ["t2", "never-there"], actor="bob", reason="done") == ["t2"]
    assert list_tenants(store) == ["t1"]
    [removal] = read_audit(store, action="whitelist.remove")
    assert (removal.actor, removal.subject, removal.reason) == ("bob", "t2", "done")
    assert remove_tenants(store, ["t2"], actor="bob") == []
    assert generation(store) == 2


@pytest.mark.parametrize("bad", INJECTIONS)
def test_a_bad_id_among_good_ones_writes_nothing(store, bad):
    add_tenants(store, ["keep"], actor="alice")
    with pytest.raises(InvalidInput, match="invalid tenant id"):
        add_tenants(store, ["new-1", bad, "new-2"], actor="mallory")
    with pytest.raises(InvalidInput, match="invalid tenant id"):
        remove_tenants(store, ["keep", bad], actor="mallory")
    assert list_tenants(store) == ["keep"]
    assert [a.subject for a in read_audit(store)] == ["keep"]
    assert generation(store) == 1


def test_free_text_reaches_the_database_only_as_bound_values(store):
    nasty = "'); DROP TABLE graysteps_whitelist; -- \" OR 1=1 租户 \x00 end"
    add_tenants(store, ["t1"], actor="o'brien", reason=nasty)
    record_audit(store, action="plan.release", subject=nasty[:60], actor="o'brien", reason=nasty, detail={"text": nasty})
    with store.read() as conn:
        assert inspect(conn).has_table("graysteps_whitelist")
    assert list_tenants(store) == ["t1"]
    first, second = read_audit(store)
    assert first.reason == nasty and first.actor == "o'brien"
    assert (second.subject, second.reason, second.detail) == (nasty[:60], nasty, {"text": nasty})


def test_audit_rows_commit_and_roll_back_with_the_callers_transaction(store):
    with pytest.raises(RuntimeError):
        with store.write() as tx:
            record_audit(tx, action="plan.release", subject="test-a", actor="ci", detail={"step": 1})
            raise RuntimeError("the plan failed")
    assert read_audit(store) == []
    with store.write() as tx:
        record_audit(tx.conn, action="plan.release", subject="test-a", actor="ci", detail={"step": 2})
    [row] = read_audit(store, subject="test-a")
    assert row.detail == {"step": 2} and row.action == "plan.release"


def test_audit_actor_defaults_to_the_jenkins_build_user(store, monkeypatch):
    monkeypatch.setenv("BUILD_USER_ID", "jenkins-jane")
    add_tenants(store, ["t1"])
    monkeypatch.delenv("BUILD_USER_ID")
    monkeypatch.setenv("USER", "shell-sam")
    add_tenants(store, ["t2"])
    assert [a.actor for a in read_audit(store)] == ["jenkins-jane", "shell-sam"]


def test_read_audit_filters_by_action_prefix_and_limits_to_the_newest(store):
    add_tenants(store, ["a", "b", "c"], actor="x")
    record_audit(store, action="plan.release", subject="svc", actor="x")
    assert [a.subject for a in read_audit(store, action_prefix="whitelist.")] == ["a", "b", "c"]
    assert [a.subject for a in read_audit(store, limit=2)] == ["c", "svc"]
