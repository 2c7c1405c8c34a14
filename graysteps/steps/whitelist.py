"""Whitelist sync: make the store exactly a source of tenant ids, in one transaction.

The source (a file, or an http(s) URL) is UTF-8, with or without a BOM, and is
either
  - one tenant id per line (spaces around an id and CR of CRLF are ignored), or
  - a CSV whose header has a `tenant_id` column (other columns are ignored).
It is CSV when its first non-blank line contains a comma or is `tenant_id`.
Blank lines and duplicate ids are ignored. One invalid line (bad id, bad
UTF-8, CSV without tenant_id, a CSV row without that column) rejects the
whole source, naming the line; nothing changes. A source without any id is
refused unless `allow_empty` (an empty export must not wipe the whitelist by
accident).

The apply: take the whitelist lock (store.py), read the current ids, compute
the diff in memory, delete the removed and insert the added through the bulk
paths (entries.py), write the audit rows, bump the generation (caches of the
cookie service drop their answers), commit. A second run with the same
source finds no difference and writes nothing. `dry_run` computes the same
diff without the lock and without writing. `sync_from()` (the command's path)
reads the current ids in a thread while the source is parsed, and uses them
under the lock only if the whitelist generation did not move meanwhile.

Entries added by a sync have the note `sync`, the actor and the time; the
source is in their audit row. Audit: one `whitelist.sync` row per chunk of
changed ids (entries.CHUNK, 50,000; removed chunks first), subject = the
source (URL without credentials or query), detail = {"added": [...], "removed": [...], "added_total",
"removed_total", "part", "parts", "sha256" of the source}. Replaying the rows
in id order rebuilds the whitelist.
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import AbstractSet, Iterable, Iterator, Sequence

from graysteps.errors import GraystepsError, InvalidInput
from graysteps.adapters.db import entries
from graysteps.adapters.actor import check_actor
from graysteps.adapters.audit.records import fit_subject, utc_now
from graysteps.adapters.db.entries import (
    ChunkAudit, audit_each, delete_entries, insert_entries, present_among, read_all_tenant_ids,
)
from graysteps.adapters.db.store import Store, read_generation
from graysteps.model.tenants import ALLOWED, is_valid_tenant_id, shown, validate_tenant_ids

FETCH_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class SyncSource:
    name: str  # what to show and audit: a path, or a URL without credentials and query
    ids: list[str]  # distinct, in source order
    sha256: str

    @functools.cached_property
    def id_set(self) -> frozenset[str]:
        return getattr(self.ids, "id_set", None) or frozenset(self.ids)


@dataclass(frozen=True)
class SyncResult:
    added: list[str]  # in source order
    removed: list[str]  # sorted
    total: int  # ids in the source (= in the store afterwards, unless dry_run)
    dry_run: bool
    generation: int | None = None  # the whitelist generation after the sync (None for dry runs)
    source: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed) and not self.dry_run


def source_display_name(location: str) -> str:
    """A path as given; a URL without user:password, query and fragment."""
    if not is_url(location):
        return location
    parts = urllib.parse.urlsplit(location)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def is_url(location: str) -> bool:
    return location.lower().startswith(("http://", "https://"))


def read_source_bytes(location: str, *, timeout: float = FETCH_TIMEOUT_S) -> bytes:
    """The raw bytes of a file or an http(s) URL."""
    name = source_display_name(location)
    if is_url(location):
        request = urllib.request.Request(location, headers={"User-Agent": "graysteps-whitelist-sync"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as e:
            raise GraystepsError(f"could not fetch --source {name}: HTTP {e.code} {e.reason}; check the URL") from e
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise GraystepsError(f"could not fetch --source {name}: {reason}; check the URL and the server") from e
    if "://" in location:
        raise InvalidInput(f"--source {shown(location)}: use a file path or an http(s):// URL")
    try:
        with open(location, "rb") as f:
            return f.read()
    except FileNotFoundError as e:
        raise InvalidInput(f"--source {shown(location)}: no such file") from e
    except OSError as e:
        raise InvalidInput(f"--source {shown(location)}: cannot read it ({e.strerror})") from e


def load_source(location: str) -> SyncSource:
    data = read_source_bytes(location)
    name = source_display_name(location)
    return SyncSource(name=name, ids=parse_source(data, name), sha256=hashlib.sha256(data).hexdigest())


def parse_source(data: bytes, name: str = "source") -> list[str]:
    """The distinct tenant ids of a source, in source order; InvalidInput naming the first bad line."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InvalidInput(
            f"{name} line {line}: not UTF-8 (byte 0x{data[e.start]:02x}); save the source as UTF-8"
        ) from e
    visible = re.search(r"\S", text)
    if visible is None:
        return []
    end = text.find("\n", visible.start())
    first = text[text.rfind("\n", 0, visible.start()) + 1 : None if end < 0 else end]
    if "," in first or first.strip().strip('"') == "tenant_id":
        return _parse_csv(text, name)
    return _parse_lines(text, name)


def _bad_line(name: str, number: int, value: str) -> InvalidInput:
    return InvalidInput(f"{name} line {number}: invalid tenant id {shown(value)}: allowed are {ALLOWED}")


# A line that is neither blank nor one tenant id (with optional spaces/tabs around, CR of CRLF).
# Possessive quantifiers: linear time on any input.
_BAD_LINE = re.compile(r"(?m)^(?![ \t]*+(?:[A-Za-z0-9._:\-]{1,64}+)?[ \t]*+\r?$)")


def _parse_lines(text: str, name: str) -> list[str]:
    bad = _BAD_LINE.search(text)
    if bad is not None:
        number = text.count("\n", 0, bad.start()) + 1
        line = text[bad.start() :].split("\n", 1)[0].strip(" \t\r")
        raise _bad_line(name, number, line)
    ids = text.split()  # every line is blank or one id: whitespace splits exactly the ids
    return _distinct(ids)


class _DistinctIds(list):
    """A list of distinct ids that already knows its set (saves building it twice for a million ids)."""

    id_set: frozenset[str]


def _distinct(ids: list[str]) -> list[str]:
    id_set = frozenset(ids)
    distinct = _DistinctIds(ids if len(id_set) == len(ids) else dict.fromkeys(ids))
    distinct.id_set = id_set
    return distinct


def _parse_csv(text: str, name: str) -> list[str]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(row for row in reader if any(cell.strip() for cell in row))
        columns = [cell.strip() for cell in header]
        if "tenant_id" not in columns:
            raise InvalidInput(
                f"{name} line {reader.line_num}: CSV header {shown(','.join(header))} has no tenant_id column"
            )
        column = columns.index("tenant_id")
        ids = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            value = row[column].strip() if column < len(row) else ""
            if not is_valid_tenant_id(value):
                raise _bad_line(name, reader.line_num, value)
            ids.append(value)
    except csv.Error as e:
        raise InvalidInput(f"{name} line {reader.line_num}: not valid CSV ({e})") from e
    return _distinct(ids)


def diff(current: set[str], desired: Sequence[str], desired_set: AbstractSet[str] | None = None) -> tuple[list[str], list[str]]:
    """(added in desired order, removed sorted)."""
    want = set(desired) if desired_set is None else desired_set
    return [t for t in desired if t not in current], sorted(current - want)


@dataclass(frozen=True)
class Snapshot:
    """The whitelist as read outside the lock, with the generation it was read at."""

    generation: int
    ids: set[str]


def read_snapshot(store: Store) -> Snapshot | None:
    """The current ids and their generation in one consistent read; None if the schema is not current."""
    from graysteps.adapters.db import migrations

    with store.read(snapshot=True) as conn:
        if migrations.current_version(conn) != migrations.LATEST:
            return None
        return Snapshot(read_generation(conn), read_all_tenant_ids(conn))


def sync_from(
    store: Store,
    location: str,
    *,
    actor: str | None = None,
    reason: str | None = None,
    dry_run: bool = False,
    allow_empty: bool = False,
) -> SyncResult:
    """Load, check and apply the source at `location`; the store's schema is created/upgraded only for a good source.

    While the source is read and checked, a thread reads the current ids (the
    database works while Python parses). Under the lock, that snapshot is used
    only if the whitelist generation has not moved since; else it is read again.
    """
    actor = check_actor(actor)
    url = store.engine.url
    if url.get_backend_name() == "sqlite" and not os.path.exists(url.database):
        source, snapshot = load_source(location), None  # no database yet: a bad source must not create one
    else:
        with ThreadPoolExecutor(1) as pool:
            prefetch = pool.submit(read_snapshot, store)
            source = load_source(location)
            try:
                snapshot = prefetch.result()
            except GraystepsError:
                snapshot = None  # unreachable now? the apply below reports it
    store.upgrade()
    return sync_whitelist(
        store, source, actor=actor, reason=reason, dry_run=dry_run, allow_empty=allow_empty, snapshot=snapshot
    )


def sync_whitelist(
    store: Store,
    source: SyncSource,
    *,
    actor: str | None = None,
    reason: str | None = None,
    dry_run: bool = False,
    allow_empty: bool = False,
    snapshot: Snapshot | None = None,
) -> SyncResult:
    """Make the whitelist exactly `source.ids` in one transaction; returns what changed (or would).

    `snapshot`: the ids read earlier (read_snapshot); used only if the generation still matches.
    """
    actor = check_actor(actor)
    if not source.ids and not allow_empty:
        raise InvalidInput(
            f"{source.name} holds no tenant ids; refusing to empty the whitelist "
            "(pass --allow-empty if that is what you want)"
        )
    if dry_run:
        snapshot = snapshot or read_snapshot(store) or Snapshot(0, set())
        current = snapshot.ids
        added, removed = diff(current, source.ids, source.id_set)
        return SyncResult(added, removed, len(source.ids), dry_run=True, source=source.name)
    with store.write() as tx:
        fresh = snapshot is not None and snapshot.generation == tx.generation
        current = snapshot.ids if fresh else read_all_tenant_ids(tx.conn)
        added, removed = diff(current, source.ids, source.id_set)
        if added or removed:
            at = utc_now()
            audit = functools.partial(_sync_audit, source, added, removed, actor=actor, reason=reason, at=at)
            delete_entries(tx.conn, removed, audit=audit("removed"))
            insert_entries(tx.conn, added, note="sync", actor=actor, at=at, audit=audit("added"))
            tx.bump_generation()
        generation = tx.generation
    return SyncResult(added, removed, len(source.ids), dry_run=False, generation=generation, source=source.name)


def _sync_audit(source: SyncSource, added: list[str], removed: list[str], kind: str, *, actor, reason, at) -> ChunkAudit:
    """The audit of the `kind` ("removed" or "added") chunks; removed chunks are numbered first."""
    size = entries.CHUNK
    removed_parts = -(-len(removed) // size)
    parts = removed_parts + -(-len(added) // size)
    first = 0 if kind == "removed" else removed_parts
    other = "added" if kind == "removed" else "removed"

    def detail(number: int) -> tuple[str, str]:
        rest = json.dumps({
            other: [], "added_total": len(added), "removed_total": len(removed),
            "part": first + number, "parts": parts, "sha256": source.sha256,
        })
        return f'{{"{kind}": ', ", " + rest[1:]

    return ChunkAudit(
        action="whitelist.sync", subject=fit_subject(source.name), actor=actor, reason=reason, at=at, detail=detail
    )


def diff_lines(result: SyncResult) -> Iterator[str]:
    for tenant in result.added:
        yield f"+ {tenant}"
    for tenant in result.removed:
        yield f"- {tenant}"


def summary_line(result: SyncResult) -> str:
    unchanged = result.total - len(result.added)
    text = f"# {len(result.added)} added, {len(result.removed)} removed, {unchanged} unchanged; {result.total} in the source"
    if result.dry_run:
        return text + " (dry run: nothing changed)"
    return text + ("" if result.changed else " (no change)")



def list_tenants(store: Store) -> list[str]:
    """Every whitelisted tenant, sorted."""
    with store.read(snapshot=True) as conn:
        return sorted(read_all_tenant_ids(conn))


def add_tenants(store: Store, tenant_ids: Iterable[str], *, actor: str | None = None, reason: str | None = None) -> list[str]:
    """Whitelist these tenants; returns the ones that were not whitelisted before (audited one by one)."""
    ids = validate_tenant_ids(tenant_ids)
    actor = check_actor(actor)
    with store.write() as tx:
        present = present_among(tx.conn, ids)
        added = [t for t in ids if t not in present]
        if added:
            at = utc_now()
            insert_entries(tx.conn, added, note=reason[:255] if reason else None, actor=actor, at=at)
            audit_each(tx.conn, "whitelist.add", added, actor=actor, reason=reason, at=at)
            tx.bump_generation()
    return added


def remove_tenants(
    store: Store, tenant_ids: Iterable[str], *, actor: str | None = None, reason: str | None = None
) -> list[str]:
    """Take these tenants off the whitelist; returns the ones that were on it (audited one by one)."""
    ids = validate_tenant_ids(tenant_ids)
    actor = check_actor(actor)
    with store.write() as tx:
        present = present_among(tx.conn, ids)
        removed = [t for t in ids if t in present]
        if removed:
            delete_entries(tx.conn, removed)
            audit_each(tx.conn, "whitelist.remove", removed, actor=actor, reason=reason, at=utc_now())
            tx.bump_generation()
    return removed
