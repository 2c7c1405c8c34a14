"""The whitelist commands as Jenkins runs them: exit codes, stdout, stderr, and no change on bad input."""

import json
import subprocess
import sys

import pytest

from tests.fixtures.whitelist import INJECTIONS


def state(cli):
    listed = cli("whitelist", "list")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def test_add_list_remove(cli):
    added = cli("whitelist", "add", "t2", "t1", "t2", "--reason", "pilot")
    assert (added.returncode, added.stdout, added.stderr) == (0, "+ t2\n+ t1\n", "")
    assert state(cli) == "t1\nt2\n"
    removed = cli("whitelist", "remove", "t1", "absent")
    assert (removed.returncode, removed.stdout) == (0, "- t1\n")
    assert state(cli) == "t2\n"


@pytest.mark.parametrize("bad", INJECTIONS[:4] + ["租户", "x" * 65])
def test_a_bad_tenant_is_one_line_on_stderr_exit_2_and_no_change(cli, bad):
    cli("whitelist", "add", "keep")
    for action in ("add", "remove"):
        done = cli("--args-json-env", "ARGS", env={"ARGS": json.dumps(["whitelist", action, "ok", bad])})
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.count("\n") == 1
        assert done.stderr.startswith(f"graysteps whitelist {action}: invalid tenant id ") or (
            "\0" in bad and done.stderr.startswith("graysteps whitelist: argument 4 ") and "control character U+0000" in done.stderr)
        assert repr(bad)[:30] in done.stderr
    assert state(cli) == "keep\n"


def test_sync_prints_the_diff_and_a_second_run_changes_nothing(cli, tmp_path):
    cli("whitelist", "add", "old", "keep")
    (tmp_path / "ids.csv").write_bytes(b"\xef\xbb\xbftenant_id,name\r\nkeep,K\r\nnew,N\r\n\r\nnew,N\r\n")
    dry = cli("whitelist", "sync", "--source", "ids.csv", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == "+ new\n- old\n# 1 added, 1 removed, 1 unchanged; 2 in the source (dry run: nothing changed)\n"
    assert state(cli) == "keep\nold\n"
    real = cli("whitelist", "sync", "--source", "ids.csv", "--reason", "nightly")
    assert real.stdout == "+ new\n- old\n# 1 added, 1 removed, 1 unchanged; 2 in the source\n"
    assert state(cli) == "keep\nnew\n"
    again = cli("whitelist", "sync", "--source", "ids.csv")
    assert again.stdout == "# 0 added, 0 removed, 2 unchanged; 2 in the source (no change)\n"


@pytest.mark.parametrize("content, message", [
    (b"good\n'; DROP TABLE graysteps_whitelist; --\n", "ids.txt line 2: invalid tenant id"),
    (b"good\nal\xffce\n", "ids.txt line 2: not UTF-8"),
    (b"name,tenant\nx,good\n", "ids.txt line 1: CSV header 'na…' (11 characters; character 5 is ',') has no tenant_id column"),
    (b'tenant_id,name\nkeep2,"unclosed\nother,x\n', "ids.txt line 3: not valid CSV (unexpected end of data)"),
    (b"", "ids.txt holds no tenant ids; refusing to empty the whitelist"),
    (b"\n\n", "ids.txt holds no tenant ids"),
])
def test_a_bad_source_is_rejected_whole_and_nothing_changes(cli, tmp_path, content, message):
    cli("whitelist", "add", "keep")
    (tmp_path / "ids.txt").write_bytes(content)
    error_file = tmp_path / "error.json"
    done = cli("whitelist", "sync", "--source", "ids.txt", env={"GRAYSTEPS_ERROR_FILE": str(error_file)})
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"graysteps whitelist sync: {message}")
    assert json.loads(error_file.read_text())["step"] == "whitelist sync"
    assert state(cli) == "keep\n"


def test_sync_from_a_url_with_summary_only(cli, http_source):
    cli("whitelist", "add", "old")
    http_source.routes["/export.txt"] = ("\ufeffweb-1\r\nweb-2\r\n".encode(), 200)
    url = f"http://127.0.0.1:{http_source.server_address[1]}/export.txt"
    allowed = {"GRAYSTEPS_SYNC_URL_HOSTS": "127.0.0.1"}
    done = cli("--args-json-env", "ARGS", env={**allowed, "ARGS": json.dumps(["whitelist", "sync", "--source", url, "--summary-only"])})
    assert (done.returncode, done.stdout) == (0, "# 2 added, 1 removed, 0 unchanged; 2 in the source\n")
    assert state(cli) == "web-1\nweb-2\n"
    http_source.routes["/export.txt"] = (b"web-1\nbad id\n", 200)
    bad = cli("whitelist", "sync", "--source", url, env=allowed)
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr.startswith(f"graysteps whitelist sync: {url} line 2: invalid tenant id 'b…' (6 characters; "
                                 "character 4 is U+0020)")
    assert state(cli) == "web-1\nweb-2\n"
    missing = cli("whitelist", "sync", "--source", url + "-gone", env=allowed)
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr
    assert state(cli) == "web-1\nweb-2\n"


def test_a_bad_source_does_not_create_a_database(tmp_path):
    (tmp_path / "ids.txt").write_bytes(b"ok\n' OR 1=1 --\n")
    db = tmp_path / "never.db"
    done = subprocess.run(
        [sys.executable, "-m", "graysteps", "whitelist", "sync", "--source", "ids.txt", "--db", f"sqlite:///{db}"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert "ids.txt line 2: invalid tenant id" in done.stderr
    assert not db.exists()


def test_allow_empty_empties_the_whitelist_on_purpose(cli, tmp_path):
    cli("whitelist", "add", "a")
    (tmp_path / "empty.txt").write_bytes(b"")
    done = cli("whitelist", "sync", "--source", "empty.txt", "--allow-empty")
    assert (done.returncode, done.stdout.splitlines()[0]) == (0, "- a")
    assert state(cli) == ""


def test_cookie_command_prints_the_cookie_for_the_auth_center(cli):
    cli("whitelist", "add", "acme")
    gray = cli("cookie", "--tenant", "acme", "--domain", "example.com", "--max-age", "3600")
    assert (gray.returncode, gray.stdout) == (0, "tenantGray=1; Path=/; Domain=example.com; Max-Age=3600; HttpOnly; SameSite=Lax\n")
    assert cli("cookie", "--tenant", "other").stdout == "tenantGray=0; Path=/; HttpOnly; SameSite=Lax\n"
    bad = cli("cookie", "--tenant", "' OR 1=1 --")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert "invalid tenant id \"' OR 1=1 --\"" in bad.stderr


def test_signed_cookie_without_a_key_is_refused(cli):
    done = cli("cookie", "--tenant", "acme", "--signed", env={"GRAYSTEPS_COOKIE_KEY": ""})
    assert (done.returncode, done.stdout) == (2, "")
    assert "signed cookies need a key" in done.stderr


def test_db_flag_wins_over_the_environment(cli, tmp_path, db_url):
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert cli("whitelist", "add", "only-in-other", "--db", other).returncode == 0
    assert cli("whitelist", "list", "--db", other).stdout == "only-in-other\n"
    listed = cli("whitelist", "list")  # $GRAYSTEPS_DB: untouched
    assert listed.stdout == ""
    if db_url.startswith("sqlite"):  # never created; a reader names the missing file rather than answer "empty"
        assert listed.returncode == 2 and "no whitelist database at" in listed.stderr
    else:
        assert listed.returncode == 0


def test_audit_records_the_jenkins_user_or_the_actor_flag(cli, db_url):
    from graysteps.adapters.audit.records import read_audit
    from graysteps.adapters.db.store import open_store

    cli("whitelist", "add", "a")
    cli("whitelist", "add", "b", "--actor", "release-manager")
    store = open_store(db_url)
    try:
        assert [(r.subject, r.actor) for r in read_audit(store)] == [("a", "ci-bot"), ("b", "release-manager")]
    finally:
        store.close()


def test_a_bad_database_url_is_exit_2(cli):
    done = cli("whitelist", "list", "--db", "postgresql://x/y")
    assert done.returncode == 2 and done.stdout == ""
    assert "unsupported database 'postgresql'" in done.stderr
