"""Property: every command, given generated bad values, fails cleanly.

For each command, hypothesis takes a good command line and replaces one or
more of its values with generated bad ones (malformed numbers, control
characters, bad tenant and service names, paths to devices, FIFOs,
directories and files with bad content, bad database URLs, bad URLs, bad kubeconfigs), passed
as argv or through --args-json-env. Whatever it draws:
  - no traceback, and no exception escapes the CLI;
  - the exit code is 1 or 2;
  - stdout is empty;
  - the whitelist database and its audit table are unchanged, no new file
    appears in the working directory, and (the `world` variant, against a real
    apiserver) no VirtualService, DestinationRule or Deployment changed.
The commands run in process (graysteps.cli.main), so a run covers hundreds of
cases in about a minute; CASES counts them (printed at the end of the module).
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import json
import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graysteps.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
EXAMPLES_PER_COMMAND = int(os.environ.get("GRAYSTEPS_PROPERTY_EXAMPLES", "25"))
CASES: dict[str, int] = {}
CASE_TIMEOUT_S = 120
HANG_FILE = Path(os.environ.get("GRAYSTEPS_PROPERTY_HANG_FILE", "/tmp/graysteps-property-hang.txt"))

# ------------------------------------------------------------------ bad values

_CANONICAL_INT = re.compile(r"(?:0|[1-9][0-9]{0,8})", re.ASCII)
_TENANT = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_SERVICE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")

controls = st.characters(codec=None, categories=["Cc"])
with_control = st.builds(lambda a, c, b: a + c + b, st.text(max_size=8), controls, st.text(max_size=8))
surrogate = st.characters(categories=["Cs"]).map(lambda c: "x" + c)


def bad_int(low: int, high: int):
    """Anything but the canonical decimal text of an integer in [low, high]."""
    loose = st.sampled_from([" 20", "20 ", "+20", "-0", "020", "٢٠", "２０", "2_0", "0x14", "1e1", "", "nan", "7" * 5000])
    return st.one_of(
        loose,
        st.integers(max_value=low - 1).map(str),
        st.integers(min_value=high + 1).map(str),
        st.text(max_size=12).filter(lambda s: not _CANONICAL_INT.fullmatch(s)),
        with_control,
    )


bad_duration = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "-1", "1e3", " 5", "+5", "5.", ".5", "٥", "0x5", "9" * 5000, ""]),
    st.floats(max_value=-0.001).map(repr),
    st.text(max_size=10).filter(lambda s: not re.fullmatch(r"[0-9]+(\.[0-9]+)?", s)),
)
bad_tenant = st.one_of(
    st.text(max_size=80).filter(lambda s: not _TENANT.fullmatch(s) and not s.startswith("-")),
    st.sampled_from(["'; DROP TABLE graysteps_whitelist; --", "x" * 65, "租户", "a b", ""]),
    with_control, surrogate,
)
bad_service = st.one_of(
    st.text(max_size=70).filter(lambda s: s not in ("test-a", "test-b") and not s.startswith("-")),
    st.sampled_from(["test-A", "test_a", "-test-a", "a" * 64, "test-a.prod", "../test-a"]),
    with_control,
)
bad_cookie_name = st.one_of(
    st.text(max_size=70).filter(lambda s: not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}", s)), with_control)
bad_branch = st.one_of(st.text(max_size=30).filter(lambda s: not re.fullmatch(r"[A-Za-z0-9._/-]+", s)),
                       st.sampled_from(["-x", "--upload-pack=x"]), with_control)
bad_choice = st.text(max_size=20).filter(lambda s: s not in ("prod", "gray", "whitelist", "weight", "balanced",
                                                             "linked", "promote", "rollback", "Strict", "Lax", "None"))
bad_db_url = st.one_of(
    st.sampled_from([
        "sqlite://", "sqlite:///", "sqlite:///:memory:", "postgresql://u:pw@127.0.0.1:1/db", "mysql+nodriver://u:pw@127.0.0.1/db",
        "mysql+pymysql://u:pw@127.0.0.1:1/db", "mysql+pymysql://u:pw@127.0.0.1:99999999/db",
        "mysql+pymysql://u:pw@127.0.0.1:x/db", "mysql+pymysql://u:pw@[::1/db", "sqlite:////proc/no-such/w.db",
        "not a url", "://", "SQLITE:///x.db", "mysql+pymysql://u:pw@127.0.0.1:1/db?charset=nope&ssl=1",
    ]),
    st.text(max_size=30).filter(lambda s: "://" not in s),
    st.text(max_size=20).map(lambda q: f"mysql+pymysql://u:pw@127.0.0.1:1/db?{q}"),
    with_control,
)


def _malformed(url: str) -> bool:
    from graysteps.adapters.db.url import check_db_url
    from graysteps.errors import InvalidInput

    try:
        check_db_url(url)
    except InvalidInput:
        return True
    return False


# rollback rolls back first and records afterwards (a database that is down never delays it), so for
# rollback only a malformed URL is bad input; a well-formed URL of a database that is down is not.
malformed_db_url = bad_db_url.filter(_malformed)
bad_url = st.one_of(
    st.sampled_from(["ftp://127.0.0.1/", "http://", "https://:0", "localhost:15001", "127.0.0.1", "file:///etc/passwd",
                     "http://[::1", "http://127.0.0.1:99999/", "javascript:alert(1)", ""]),
    st.text(max_size=20).filter(lambda s: not s.startswith("http")),
    with_control,
)
bad_text = st.one_of(with_control, surrogate)  # free text (reasons, actors, tags): only these are bad


class Files:
    """Bad files made on demand in the test's working directory (devices, FIFOs, directories, bad content)."""

    def __init__(self, root: Path):
        self.root = root
        self.count = 0
        (root / "a-dir").mkdir(exist_ok=True)
        if not (root / "a-fifo").exists():
            os.mkfifo(root / "a-fifo")

    def write(self, content: bytes) -> str:
        self.count += 1
        path = self.root / "made" / f"f{self.count}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(content)
        return str(path.relative_to(self.root))

    def known(self) -> set[str]:
        return {"a-dir", "a-fifo", "made", "catalog.yaml", "plan.yaml", "whitelist.db", "whitelist.db-wal",
                "whitelist.db-shm", "kubeconfig", "key", "ctx"}


SPECIAL_PATHS = ["/dev/zero", "/dev/urandom", "/dev/null", "/proc/self", "/nonexistent/file", "a-dir", "a-fifo", "",
                 "/etc/passwd", "../outside", "a\x00b"]
bad_yaml_content = st.one_of(
    st.sampled_from([
        b"a: " + b"[" * 3000 + b"]" * 3000,
        b"a: " + b"{b: " * 2000 + b"1" + b"}" * 2000,
        b"a: " + b"9" * 5000,
        b"services:\n  - service: test-a\n    service: test-b\n    strategy: whitelist\n",
        b"kind: VirtualService\nkind: VirtualService\n",
        b"\xff\xfe\x00",
        b"services: [",
        b"- just\n- a\n- list\n",
        b"!!python/object/apply:os.system ['touch pwned']",
        b"&a [*a]",
        b"",
    ]),
    st.binary(max_size=200),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                 max_leaves=10).map(lambda v: json.dumps(v).encode()),
)
bad_source_content = st.one_of(
    st.binary(max_size=200).map(lambda b: b + b"\n\xff\n"),  # never UTF-8
    st.tuples(st.lists(st.from_regex(_TENANT, fullmatch=True), max_size=5), bad_tenant).map(
        lambda t: ("\n".join(t[0]) + "\n" + t[1].replace("\n", " ") + "\n").encode("utf-8", "surrogatepass")
        if t[1].strip() else b"\n".join(x.encode() for x in t[0]) + b"\n\x01bad\n"),
    st.sampled_from([b"", b"\n\n", b"tenant_id,name\nok,\"unclosed\nmore,x\n", b"name,tenant\nx,ok\n", b"\xef\xbb\xbf"]),
)


def bad_file(files: Files, content):
    return st.one_of(st.sampled_from(SPECIAL_PATHS), content.map(files.write))


# ------------------------------------------------------------------ commands


def templates(files: Files, kubeconfig: str) -> dict[str, tuple[list[str], dict]]:
    """Per command: a good command line, and the bad values each of its options may take."""
    kube = ["--catalog", "catalog.yaml", "--kubeconfig", kubeconfig]
    yaml_file = bad_file(files, bad_yaml_content)
    out_file = st.sampled_from(["/proc/nope/out", "a-dir", "/dev/full/x", "made/good.txt/x", "a\x00b", "", "/"])
    out_dir = st.sampled_from(["/proc/nope/out", "/dev/full/x", "made/good.txt", "made/good.txt/x", "a\x00b", ""])
    cluster = {"--kubeconfig": yaml_file}
    wait = {"--istiod": bad_url, "--wait-timeout": bad_duration}
    # Any regular file of 32 bytes or more is a usable key (/etc/passwd included): not bad input for --key-file.
    key_file = st.one_of(st.sampled_from([p for p in SPECIAL_PATHS if p != "/etc/passwd"]),
                         st.binary(max_size=31).map(files.write))
    cookie = {"--max-age": bad_int(0, 34_560_000), "--cookie-name": bad_cookie_name, "--domain": bad_tenant,
              "--same-site": bad_choice, "--db": bad_db_url}
    return {
        "whitelist add": (["whitelist", "add", "good-1", "--reason", "r"],
                          {"TENANT": bad_tenant, "--reason": bad_text, "--actor": bad_text, "--db": bad_db_url}),
        "whitelist remove": (["whitelist", "remove", "acme"], {"TENANT": bad_tenant, "--actor": bad_text, "--db": bad_db_url}),
        "whitelist list": (["whitelist", "list"], {"--db": bad_db_url}),
        "whitelist sync": (["whitelist", "sync", "--source", "made/good.txt"],
                           {"--source": st.one_of(bad_file(files, bad_source_content), bad_url),
                            "--reason": bad_text, "--actor": bad_text, "--db": bad_db_url}),
        "cookie": (["cookie", "--tenant", "acme", "--signed"], {"--tenant": bad_tenant, **cookie,
                                                      "--key-file": key_file}),
        "serve-cookie": (["serve-cookie", "--port", "0", "--signed"],
                         {"--port": bad_int(0, 65535), "--ttl": bad_duration, "--generation-check": bad_duration,
                          "--threads": bad_int(1, 1_000_000), "--idle-timeout": bad_int(1, 1_000_000),
                          "--connection-limit": bad_int(1, 1_000_000), "--host": bad_text, **cookie,
                          "--key-file": key_file}),
        "render": (["render", "--catalog", "catalog.yaml", "--service", "test-a", "--strategy", "weight", "--weight", "20"],
                   {"--service": bad_service, "--strategy": bad_choice, "--weight": bad_int(0, 100),
                    "--from": yaml_file, "--catalog": yaml_file}),
        "render --env": (["render", "--catalog", "catalog.yaml", "--service", "test-a", "--env", "gray", "--image",
                          "registry.example:5000/test-a:1"],
                         {"--env": bad_choice, "--image": bad_text, "--replicas": bad_int(0, 1000), "--service": bad_service}),
        "route": (["route", "--service", "test-a", "--strategy", "weight", "--weight", "20", *kube],
                  {"--service": bad_service, "--strategy": bad_choice, "--weight": bad_int(0, 100), "--catalog": yaml_file,
                   **cluster, **wait}),
        "deploy": (["deploy", "--service", "test-a", "--env", "gray", "--image", "registry.example:5000/test-a:1", *kube],
                   {"--service": bad_service, "--env": bad_choice, "--replicas": bad_int(0, 1000),
                    "--timeout": bad_duration, "--progress-deadline": bad_int(1, 999_999_999),
                    "--build-record": bad_file(files, bad_yaml_content), "--image": bad_text, **cluster}),
        "verify": (["verify", "--service", "test-a", "--gateway", "http://127.0.0.1:1", *kube],
                   {"--service": bad_service, "--gateway": bad_url, "--gray-caller": bad_url,
                    "--tolerance": bad_duration, "--max-requests": bad_int(1, 10_000_000),
                    "--concurrency": bad_int(1, 256), "--rollout-timeout": bad_duration, "--junit": out_file,
                    "--path": st.sampled_from(["a b", "/ü", " /"]), **cluster}),
        "status": (["status", *kube], {"--service": bad_service, "--catalog": yaml_file, **cluster}),
        "rollback": (["rollback", "--service", "test-a", *kube],
                     {"--service": bad_service, "--workers": bad_int(1, 64), "--db": malformed_db_url, "--actor": bad_text,
                      "--namespace": bad_service, **cluster, **wait}),
        "release": (["release", "--plan", "plan.yaml", *kube],
                    {"--plan": yaml_file, "--db": bad_db_url, "--actor": bad_text, "--catalog": yaml_file, **cluster, **wait}),
        "jobs render": (["jobs", "render", "--out", "jobs-out", "--repo", "https://git.example/r.git", "--catalog",
                         "catalog.yaml"],
                        {"--out": out_dir, "--repo": st.one_of(bad_url.filter(lambda u: not u.startswith("file:///")),
                                                               st.sampled_from(["--upload-pack=x", "-c x",
                                                                                "https://u:pw@h/r.git"])),
                         "--branch": bad_branch, "--credentials-id": bad_text, "--catalog": yaml_file}),
        "jobs sync": (["jobs", "sync", "--url", "http://127.0.0.1:1/", "--repo", "https://git.example/r.git",
                       "--catalog", "catalog.yaml"],
                      {"--url": bad_url, "--folder": bad_tenant, "--branch": bad_branch, "--catalog": yaml_file}),
        "build": (["build", "--service", "test-a", "--context", "ctx", "--tag", "1.0",
                   "--docker-host", "unix:///nonexistent/docker.sock"],
                  {"--service": bad_service, "--context": st.sampled_from(SPECIAL_PATHS), "--tag": bad_tenant,
                   "--profile": bad_choice, "--build-arg": bad_text, "--out": out_file, "--docker-host": bad_url}),
    }


def command_line(base: list[str], replaced: dict[str, str]) -> list[str]:
    argv = list(base)
    for option, value in replaced.items():
        if option == "TENANT":  # the positional tenant after add/remove
            argv[2] = value
        elif option in argv:
            argv[argv.index(option) + 1] = value
        else:
            argv.append(f"{option}={value}")
    return argv


# ------------------------------------------------------------------ what must not change


def database_rows(path: Path) -> list:
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return [(t, sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"')))) for t in tables]


def workdir_files(root: Path) -> set[str]:
    return {p.name for p in root.iterdir()}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working directory with a catalog, a plan, a whitelist database holding `acme`, a build context."""
    shutil.copy(EXAMPLES / "catalog.yaml", tmp_path / "catalog.yaml")
    shutil.copy(EXAMPLES / "plans" / "scenario-1.yaml", tmp_path / "plan.yaml")
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    (tmp_path / "key").write_text("k" * 40)
    files = Files(tmp_path)
    files.write(b"")  # made/ exists
    (tmp_path / "made" / "good.txt").write_text("acme\nbeta\n")
    for name in [k for k in os.environ if k.startswith(("GRAYSTEPS_", "JENKINS_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GRAYSTEPS_DB", f"sqlite:///{tmp_path / 'whitelist.db'}")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-never"))
    monkeypatch.setenv("GRAYSTEPS_READ_TIMEOUT", "5")
    monkeypatch.setenv("GRAYSTEPS_CONFIG", str(tmp_path / "no-config.yaml"))
    monkeypatch.setenv("GRAYSTEPS_COOKIE_KEY_FILE", str(tmp_path / "key"))
    monkeypatch.chdir(tmp_path)
    assert main(["whitelist", "add", "acme", "--reason", "seed"]) == 0
    return tmp_path, files


def run_case(root: Path, argv: list[str], via_json: bool, monkeypatch, cluster=None) -> None:
    before_rows, before_files = database_rows(root / "whitelist.db"), workdir_files(root)
    before_cluster = cluster() if cluster else None
    given = argv
    if via_json:
        monkeypatch.setenv("GRAYSTEPS_ARGS", json.dumps(argv))
        argv = ["--args-json-env", "GRAYSTEPS_ARGS"]
    out, err = io.StringIO(), io.StringIO()
    # A case that hangs (a command that should have refused and serves or waits instead) ends the run
    # after CASE_TIMEOUT_S instead of hanging CI, leaving its argv and every thread's stack in HANG_FILE.
    HANG_FILE.write_text(f"hung on: {given!r}" + (" (via --args-json-env)" if via_json else "") + "\n")
    hang = open(HANG_FILE, "a")
    faulthandler.dump_traceback_later(CASE_TIMEOUT_S, exit=True, file=hang)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        faulthandler.cancel_dump_traceback_later()
        hang.close()
        HANG_FILE.unlink(missing_ok=True)
    stderr = err.getvalue()
    assert code in (1, 2), (argv, code, out.getvalue()[:300], stderr[:500])
    assert out.getvalue() == "", (argv, out.getvalue()[:300])
    assert "Traceback" not in stderr, (argv, stderr)
    assert stderr.startswith("graysteps") and stderr.strip(), (argv, stderr)
    assert database_rows(root / "whitelist.db") == before_rows, argv
    assert workdir_files(root) - before_files - files_made(root) == set(), (argv, workdir_files(root) - before_files)
    assert not (root / "xdg-never").exists(), argv
    if cluster:
        assert cluster() == before_cluster, argv


def files_made(root: Path) -> set[str]:
    return {"made"}


def draw_case(data, files: Files, kubeconfig: str, command: str) -> tuple[list[str], bool]:
    base, slots = templates(files, kubeconfig)[command]
    chosen = data.draw(st.lists(st.sampled_from(sorted(slots)), min_size=1, max_size=3, unique=True), label="options")
    replaced = {option: data.draw(slots[option], label=option) for option in chosen}
    via_json = data.draw(st.booleans(), label="via --args-json-env")
    return command_line(base, replaced), via_json


COMMANDS = ["whitelist add", "whitelist remove", "whitelist list", "whitelist sync", "cookie", "serve-cookie", "render",
            "render --env", "route", "deploy", "verify", "status", "rollback", "release", "jobs render", "jobs sync",
            "build"]
CLUSTER_COMMANDS = ["route", "deploy", "verify", "status", "rollback", "release"]
HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much,
          HealthCheck.data_too_large]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_fails_cleanly_on_generated_bad_values(workdir, monkeypatch, command):
    root, files = workdir
    unreachable = root / "kubeconfig"
    unreachable.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}], "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))

    @settings(max_examples=EXAMPLES_PER_COMMAND, deadline=None, suppress_health_check=HEALTH, database=None)
    @given(data=st.data())
    def property_(data):
        argv, via_json = draw_case(data, files, str(unreachable), command)
        run_case(root, argv, via_json, monkeypatch)
        CASES[command] = CASES.get(command, 0) + 1

    property_()


@pytest.mark.world
@pytest.mark.parametrize("command", CLUSTER_COMMANDS)
def test_cluster_commands_change_nothing_in_a_real_cluster_on_generated_bad_values(workdir, monkeypatch, kube, command):
    """The same property against a real apiserver, where the prod/gray namespaces hold a routed test-a."""
    from kubernetes import client

    root, files = workdir
    with kube.api_client() as api:
        core = client.CoreV1Api(api)
        for namespace in ("prod", "gray"):
            with contextlib.suppress(client.ApiException):
                core.create_namespace({"metadata": {"name": namespace}})
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["route", "--service", "test-a", "--strategy", "whitelist", "--catalog", "catalog.yaml",
                     "--kubeconfig", kube.kubeconfig]) == 0

    def cluster() -> list:
        with kube.api_client() as api:
            custom, apps = client.CustomObjectsApi(api), client.AppsV1Api(api)
            seen = []
            for namespace in ("prod", "gray"):
                for plural in ("virtualservices", "destinationrules"):
                    items = custom.list_namespaced_custom_object("networking.istio.io", "v1", namespace, plural)["items"]
                    seen += [(plural, namespace, i["metadata"]["name"], i["metadata"]["resourceVersion"]) for i in items]
                seen += [("deployments", namespace, d.metadata.name, d.metadata.resource_version)
                         for d in apps.list_namespaced_deployment(namespace).items]
            return sorted(seen)

    assert any(kind == "virtualservices" for kind, *_ in cluster())

    @settings(max_examples=max(5, EXAMPLES_PER_COMMAND // 3), deadline=None, suppress_health_check=HEALTH, database=None)
    @given(data=st.data())
    def property_(data):
        argv, via_json = draw_case(data, files, kube.kubeconfig, command)
        run_case(root, argv, via_json, monkeypatch, cluster=cluster)
        CASES[f"{command} (cluster)"] = CASES.get(f"{command} (cluster)", 0) + 1

    property_()


def teardown_module(module):
    if CASES:
        print(f"\nbad-value cases run: {sum(CASES.values())} ({', '.join(f'{k} {v}' for k, v in sorted(CASES.items()))})")
