import threading

import pytest

from graysteps.errors import GraystepsError, InvalidInput
from graysteps.adapters.db import entries
from graysteps.adapters.audit.records import read_audit
from graysteps.steps.whitelist import add_tenants, list_tenants
from graysteps.adapters.db.store import open_store, read_generation
from graysteps.steps.whitelist import (
    SyncSource, load_source, parse_source, read_snapshot, source_display_name, sync_from, sync_whitelist,
)


def source(*ids, name="src"):
    return SyncSource(name=name, ids=list(ids), sha256="0" * 64)


# --- parsing -----------------------------------------------------------------

def test_plain_source_with_crlf_bom_blanks_spaces_and_duplicates():
    data = "\ufefft1\r\n\r\n  t2 \r\n\tt1\n\n   \nt3".encode("utf-8")
    assert parse_source(data) == ["t1", "t2", "t3"]


def test_csv_source_uses_the_tenant_id_column():
    data = b'\xef\xbb\xbfname,tenant_id,since\r\n"Acme, Inc",acme,2024\r\n\r\nBeta,beta-01,2025\nAcme again,acme,2024\n'
    assert parse_source(data) == ["acme", "beta-01"]


def test_a_header_only_tenant_id_line_starts_a_one_column_csv():
    assert parse_source(b"tenant_id\nt1\nt2\n") == ["t1", "t2"]


@pytest.mark.parametrize("data, line, shown", [
    (b"t1\nt2\n'; DROP TABLE x; --\nt3\n", 3, "DROP TABLE"),
    (b"t1\n\n\"  OR 1=1\n", 3, "OR 1=1"),
    ("t1\n租户\n".encode(), 2, "租户"),
    (b"t1\nt\x002\n", 2, "\\x00"),
    (b"t1\n" + b"x" * 65 + b"\n", 2, "xxxx"),
    (b"t1\nt 2\n", 2, "t 2"),
    ("t1\nt2\u2028\n".encode(), 2, "\\u2028"),
    (b"tenant_id,name\nok,x\nnot ok,y\n", 3, "not ok"),
    (b"name,tenant_id\nx,ok\ny\n", 3, "''"),
    (b"name,tenant_id\nx,ok\ny,\n", 3, "''"),
])
def test_an_invalid_line_rejects_the_source_naming_the_line(data, line, shown):
    with pytest.raises(InvalidInput) as caught:
        parse_source(data, "ids.txt")
    assert f"ids.txt line {line}:" in caught.value.message
    assert shown in caught.value.message


def test_bad_utf8_is_rejected_naming_the_line():
    with pytest.raises(InvalidInput, match=r"ids.txt line 3: not UTF-8 \(byte 0xe9\)"):
        parse_source(b"t1\nt2\ncaf\xe9\n", "ids.txt")


def test_csv_without_tenant_id_column_is_rejected():
    with pytest.raises(InvalidInput, match="ids.csv line 1: CSV header 'name,tenant' has no tenant_id column"):
        parse_source(b"name,tenant\nx,t1\n", "ids.csv")


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\n  \r\n", b"tenant_id\n", b"tenant_id,name\n\n"])
def test_sources_without_ids_parse_to_nothing(data):
    assert parse_source(data) == []


def test_urls_are_shown_without_credentials_or_query():
    assert source_display_name("https://u:pw@h.example:8443/ids.txt?token=abc#x") == "https://h.example:8443/ids.txt"
    assert source_display_name("/srv/ids.txt") == "/srv/ids.txt"


def test_a_missing_file_or_a_foreign_scheme_is_refused(tmp_path):
    with pytest.raises(InvalidInput, match="no such file"):
        load_source(str(tmp_path / "missing.txt"))
    with pytest.raises(InvalidInput, match="use a file path or an http"):
        load_source("ftp://example.com/ids.txt")


# --- applying ----------------------------------------------------------------

def test_sync_makes_the_store_exactly_the_source(store):
    add_tenants(store, ["old-1", "keep", "old-2"], actor="alice")
    result = sync_whitelist(store, source("keep", "new-1", "new-2"), actor="sync-bot", reason="nightly")
    assert (result.added, result.removed, result.changed) == (["new-1", "new-2"], ["old-1", "old-2"], True)
    assert list_tenants(store) == ["keep", "new-1", "new-2"]
    [audit] = [a for a in read_audit(store) if a.action == "whitelist.sync"][:1]
    assert (audit.actor, audit.subject, audit.reason) == ("sync-bot", "src", "nightly")


def test_a_second_sync_with_the_same_source_changes_nothing(store):
    first = sync_whitelist(store, source("a", "b"), actor="x")
    audit_rows = len(read_audit(store))
    second = sync_whitelist(store, source("b", "a"), actor="x")
    assert (second.added, second.removed, second.changed) == ([], [], False)
    assert second.generation == first.generation
    assert len(read_audit(store)) == audit_rows


def test_dry_run_reports_the_diff_and_changes_nothing(store):
    add_tenants(store, ["a", "b"], actor="x")
    result = sync_whitelist(store, source("b", "c"), actor="x", dry_run=True)
    assert (result.added, result.removed, result.changed) == (["c"], ["a"], False)
    assert list_tenants(store) == ["a", "b"]
    assert [a.action for a in read_audit(store)] == ["whitelist.add", "whitelist.add"]


def test_a_snapshot_read_before_the_lock_is_not_trusted_once_the_whitelist_moved(store):
    add_tenants(store, ["a"], actor="x")
    stale = read_snapshot(store)
    add_tenants(store, ["sneaked-in"], actor="y")  # another writer between the read and the lock
    result = sync_whitelist(store, source("a", "b"), actor="x", snapshot=stale)
    assert (result.added, result.removed) == (["b"], ["sneaked-in"])
    assert list_tenants(store) == ["a", "b"]


def test_sync_from_a_file_parses_while_reading_and_applies(store, tmp_path):
    add_tenants(store, ["a", "gone"], actor="x")
    (tmp_path / "ids.txt").write_text("a\nb\n")
    result = sync_from(store, str(tmp_path / "ids.txt"), actor="x")
    assert (result.added, result.removed) == (["b"], ["gone"])
    assert list_tenants(store) == ["a", "b"]


def test_an_empty_source_is_refused_unless_allowed(store):
    add_tenants(store, ["a"], actor="x")
    with pytest.raises(InvalidInput, match="holds no tenant ids; refusing to empty the whitelist"):
        sync_whitelist(store, source(), actor="x")
    assert list_tenants(store) == ["a"]
    assert sync_whitelist(store, source(), actor="x", allow_empty=True).removed == ["a"]
    assert list_tenants(store) == []


def test_big_changes_are_audited_in_parts_that_replay_to_the_store(store, monkeypatch):
    monkeypatch.setattr(entries, "CHUNK", 10_000)
    first = [f"t{i:05d}" for i in range(25_000)]
    sync_whitelist(store, source(*first), actor="x")
    second = first[5_000:] + [f"n{i:05d}" for i in range(12_000)]
    sync_whitelist(store, source(*second), actor="x")
    rows = read_audit(store, action="whitelist.sync")
    assert [(r.detail["part"], r.detail["parts"]) for r in rows] == [(1, 3), (2, 3), (3, 3), (1, 3), (2, 3), (3, 3)]
    assert replay(rows) == set(list_tenants(store)) == set(second)


def replay(rows):
    """The whitelist that the sync audit rows describe, applied in order; checks each sync saw its predecessor."""
    state: set[str] = set()
    for row in rows:
        added, removed = set(row.detail["added"]), set(row.detail["removed"])
        assert not added & state, "a sync added tenants that were already there: it did not see the previous sync"
        assert removed <= state, "a sync removed tenants that were not there: it did not see the previous sync"
        state = (state - removed) | added
    return state


def test_sync_from_an_http_url(store, http_source):
    http_source.routes["/ids.csv?token=s3cret"] = (b"tenant_id\nweb-1\nweb-2\n", 200)
    url = f"http://127.0.0.1:{http_source.server_address[1]}/ids.csv?token=s3cret"
    result = sync_whitelist(store, load_source(url), actor="x")
    assert result.added == ["web-1", "web-2"]
    assert list_tenants(store) == ["web-1", "web-2"]
    [row] = read_audit(store, action="whitelist.sync")
    assert row.subject == f"http://127.0.0.1:{http_source.server_address[1]}/ids.csv"


def test_an_http_error_is_reported_and_nothing_changes(http_source):
    url = f"http://127.0.0.1:{http_source.server_address[1]}/missing.txt"
    with pytest.raises(GraystepsError, match="could not fetch --source .*/missing.txt: HTTP 404"):
        load_source(url)


def test_concurrent_syncs_leave_exactly_one_source_and_a_consistent_audit(db_url):
    sources = [source(*[f"s{k}-{i:05d}" for i in range(k * 1000, k * 1000 + 6000)], name=f"src-{k}") for k in range(4)]
    open_store(db_url).close()  # schema in place before the race
    barrier = threading.Barrier(len(sources))
    results, errors = {}, []

    def run(src):
        store = open_store(db_url)
        try:
            barrier.wait()
            for _ in range(3):
                results.setdefault(src.name, []).append(sync_whitelist(store, src, actor=src.name))
        except Exception as e:  # reported below
            errors.append(e)
        finally:
            store.close()

    threads = [threading.Thread(target=run, args=(s,)) for s in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    store = open_store(db_url)
    try:
        final = list_tenants(store)
        assert any(final == sorted(s.ids) for s in sources)
        rows = read_audit(store, action="whitelist.sync")
        assert replay(rows) == set(final)
        changing = sum(r.changed for rs in results.values() for r in rs)
        with store.read() as conn:
            assert read_generation(conn) == changing
        assert len({r.generation for rs in results.values() for r in rs if r.changed}) == changing
    finally:
        store.close()
