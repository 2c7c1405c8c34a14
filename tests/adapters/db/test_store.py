from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from graysteps.errors import GraystepsError, InvalidInput
from graysteps.adapters.db import migrations
from graysteps.adapters.audit.records import read_audit
from graysteps.steps.whitelist import add_tenants, list_tenants
from graysteps.adapters.db.models import Base, SchemaVersion
from graysteps.adapters.db.url import resolve_db_url
from graysteps.adapters.db.store import create_store_engine, open_store, read_generation


def test_db_url_comes_from_the_argument_then_the_environment_then_the_default_file(tmp_path):
    env = {"GRAYSTEPS_DB": "sqlite:////from/env.db", "XDG_DATA_HOME": str(tmp_path)}
    assert resolve_db_url("sqlite:////from/arg.db", env) == "sqlite:////from/arg.db"
    assert resolve_db_url(None, env) == "sqlite:////from/env.db"
    del env["GRAYSTEPS_DB"]
    assert resolve_db_url(None, env) == f"sqlite:///{tmp_path}/graysteps/whitelist.db"
    assert (tmp_path / "graysteps").is_dir()


def test_default_file_is_under_local_share_without_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_db_url(None, {}) == f"sqlite:///{Path(tmp_path) / '.local/share/graysteps/whitelist.db'}"


@pytest.mark.parametrize("url", ["nonsense", "postgresql://x/y", "sqlite://", "sqlite:///:memory:"])
def test_unusable_db_urls_are_refused(url):
    with pytest.raises(InvalidInput):
        create_store_engine(url)


def test_a_new_database_gets_the_newest_schema_matching_the_models(db_url):
    store = open_store(db_url)
    try:
        with store.engine.connect() as conn:
            assert migrations.current_version(conn) == migrations.LATEST
            found = inspect(conn)
            for table in Base.metadata.sorted_tables:
                columns = {c["name"]: c["nullable"] for c in found.get_columns(table.name)}
                assert columns == {c.name: c.nullable for c in table.columns}, table.name
                indexes = {i["name"] for i in found.get_indexes(table.name)}
                assert {i.name for i in table.indexes} <= indexes, table.name
        assert open_store(db_url).engine  # a second open applies nothing and does not fail
        with store.engine.connect() as conn:
            assert conn.execute(select(SchemaVersion.version)).scalars().all() == [1, 2]
    finally:
        store.close()


def test_an_older_schema_is_upgraded_keeping_its_data(db_url):
    engine = create_store_engine(db_url)
    assert migrations.upgrade(engine, target=1) == [1]
    with engine.begin() as conn:  # a version-1 database in use: an entry and an audit row, no detail column
        conn.execute(text(
            "INSERT INTO graysteps_whitelist (tenant_id, note, added_by, added_at) "
            "VALUES ('old-tenant', 'from v1', 'alice', '2024-01-02 03:04:05')"))
        conn.execute(text(
            "INSERT INTO graysteps_audit (at, actor, action, subject, reason) "
            "VALUES ('2024-01-02 03:04:05', 'alice', 'whitelist.add', 'old-tenant', 'v1 era')"))
        assert "detail" not in {c["name"] for c in inspect(conn).get_columns("graysteps_audit")}
        assert not inspect(conn).has_table("graysteps_state")
    engine.dispose()

    store = open_store(db_url)  # opening upgrades
    try:
        with store.read() as conn:
            assert migrations.current_version(conn) == migrations.LATEST
            assert read_generation(conn) == 0
        assert list_tenants(store) == ["old-tenant"]
        [old] = read_audit(store)
        assert (old.actor, old.subject, old.reason, old.detail) == ("alice", "old-tenant", "v1 era", None)
        assert add_tenants(store, ["new-tenant"], actor="bob") == ["new-tenant"]
        assert list_tenants(store) == ["new-tenant", "old-tenant"]
    finally:
        store.close()


def test_a_schema_newer_than_this_graysteps_is_refused(db_url):
    store = open_store(db_url)
    with store.engine.begin() as conn:
        conn.execute(SchemaVersion.__table__.insert().values(version=99, name="future", applied_at=text("CURRENT_TIMESTAMP")))
    store.close()
    with pytest.raises(GraystepsError, match="schema is version 99, newer than this graysteps"):
        open_store(db_url)


def test_tenant_ids_are_case_sensitive(store):
    assert add_tenants(store, ["Tenant-1", "tenant-1"], actor="t") == ["Tenant-1", "tenant-1"]
    assert list_tenants(store) == ["Tenant-1", "tenant-1"]


def test_an_unreachable_database_is_a_clear_error_without_the_password():
    with pytest.raises(GraystepsError) as caught:
        open_store("mysql+pymysql://user:s3cret@127.0.0.1:1/db?connect_timeout=2")
    assert "s3cret" not in caught.value.message
    assert "could not open the whitelist database mysql+pymysql://user:***@127.0.0.1:1/db" in caught.value.message


@pytest.mark.parametrize("url, says", [
    ("nonsense", "not a database URL"),
    ("postgresql://release:s3cret@db.example/graysteps", "unsupported database 'postgresql'"),
    ("sqlite://", "needs a file"),
    ("sqlite:///:memory:", "needs a file"),
    ("mysql+nodriver://release:s3cret@127.0.0.1/graysteps", "driver 'nodriver' is not one graysteps ships"),
    ("mysql://release:s3cret@127.0.0.1/graysteps", "driver 'default' is not one graysteps ships"),
    ("mysql+pymysql://release:s3cret@127.0.0.1:99999999/graysteps", "host or port"),
    ("mysql+pymysql://release:s3cret@127.0.0.1:x/graysteps", "host or port"),
    ("mysql+pymysql://release:s3cret@[::1/graysteps", "host or port"),
    ("mysql+pymysql://release:s3cret@127.0.0.1/", "needs a host and a database name"),
])
def test_the_cheap_url_check_refuses_what_the_store_refuses_and_never_shows_a_password(url, says):
    from graysteps.adapters.db.url import check_db_url

    with pytest.raises(InvalidInput, match=says) as refused:
        check_db_url(url)
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize("url", ["sqlite:////var/lib/graysteps/whitelist.db", "sqlite:///relative.db",
                                 "mysql+pymysql://u:p@db:3306/graysteps?charset=utf8mb4", "mariadb+pymysql://u@h/db"])
def test_the_cheap_url_check_lets_supported_databases_through(url):
    from graysteps.adapters.db.url import check_db_url

    assert check_db_url(url) == url
