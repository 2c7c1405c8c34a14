"""The private MariaDB really stores rows, for the test user, over SQLAlchemy + PyMySQL."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.world


def test_a_row_written_through_sqlalchemy_reads_back_from_a_new_connection(mariadb):
    table = f"smoke_{uuid.uuid4().hex[:8]}"
    tenant = "租户-" + uuid.uuid4().hex[:6]  # utf8mb4 round trip
    engine = sa.create_engine(mariadb.url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE TABLE {table} (id INT PRIMARY KEY, tenant VARCHAR(64)) ENGINE=InnoDB"))
            conn.execute(sa.text(f"INSERT INTO {table} VALUES (:id, :tenant)"), {"id": 1, "tenant": tenant})
        engine.dispose()  # the read below uses a fresh connection, not a cached one
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT id, tenant FROM {table}")).all()
            server = conn.execute(sa.text("SELECT VERSION()")).scalar_one()
        assert rows == [(1, tenant)]
        assert "MariaDB" in server
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


def test_the_test_user_cannot_touch_other_databases_but_admin_can(mariadb):
    engine = sa.create_engine(mariadb.url)
    with pytest.raises(sa.exc.OperationalError, match="denied"):
        with engine.connect() as conn:
            conn.execute(sa.text("CREATE DATABASE not_ours"))
    engine.dispose()
    admin = sa.create_engine(mariadb.admin_url)
    with admin.connect() as conn:
        assert mariadb.database in conn.execute(sa.text("SHOW DATABASES")).scalars().all()
    admin.dispose()
