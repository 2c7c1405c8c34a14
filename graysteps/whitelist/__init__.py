"""The tenant whitelist: the seed's MySQL gray list (§2.2, §4.2), for real.

The auth center asks the cookie generator (`serve-cookie`) whether a tenant is
gray; the generator looks the tenant up here; a scheduled Jenkins job keeps
the list in sync with a source file or URL (`whitelist sync`).

Modules, one idea each:
  tenants     what a tenant id is (validation)
  models      the tables (SQLAlchemy 2.x models)
  migrations  the schema versions and how to upgrade an older database
  db_url      which database (--db, $GRAYSTEPS_DB, the SQLite default); a cheap URL check
  store       how to open the database; the write lock
  audit       the audit log (generic: the release plans use it too)
  entries     reading and changing whitelist entries (bulk paths included)
  sync        parsing a sync source, the diff, the one-transaction apply
  cookie      plain and HMAC-signed gray cookies
  server      the cookie service (HTTP) with its invalidated cache

Keep this file free of imports: command modules import from here lazily.
"""
