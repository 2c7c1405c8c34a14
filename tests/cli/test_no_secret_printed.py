"""No secret is ever printed: the suite's commands run with known test passwords
and tokens (in URLs, in the environment, in key files, in a kubeconfig), and
none of them may appear in stdout, stderr or the error file, whether the
command succeeds or fails. URLs are still shown, with *** in their place."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.fixtures.fake_jenkins import FakeJenkins

ROOT = Path(__file__).resolve().parents[2]
CATALOG = str(ROOT / "examples" / "catalog.yaml")

DB_PASSWORD = "dbPw-7f3a9c41"
QUERY_TOKEN = "qTok-55e1b2d0"
JENKINS_TOKEN = "jTok-11aa22bb33cc44dd"
JENKINS_URL_PASSWORD = "jUrlPw-9d8c7b6a"
SOURCE_PASSWORD = "srcPw-0c0ffee1"
COOKIE_KEY = "cookieKey-" + "x" * 40
KUBE_TOKEN = "kubeTok-4b5c6d7e8f90"
GATEWAY_PASSWORD = "gwPw-a1b2c3d4"
SECRETS = (DB_PASSWORD, QUERY_TOKEN, JENKINS_TOKEN, JENKINS_URL_PASSWORD, SOURCE_PASSWORD, COOKIE_KEY, KUBE_TOKEN,
           GATEWAY_PASSWORD)


class _Source(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = b"web-1\nweb-2\n" if self.path.startswith("/ids.txt") else b"gone"
        self.send_response(200 if self.path.startswith("/ids.txt") else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def source_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Source)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def jenkins():
    with FakeJenkins({"bot": JENKINS_TOKEN}) as server:
        yield server


def commands(tmp: Path, source_port: int, jenkins_url: str) -> list[tuple[list[str], dict]]:
    """(argv, extra env) of every command, each given secrets the way a user or Jenkins would."""
    sqlite = f"sqlite:///{tmp / 'w.db'}"
    mysql = f"mysql+pymysql://graysteps:{DB_PASSWORD}@127.0.0.1:1/graysteps?ssl_key={QUERY_TOKEN}"
    (tmp / "key").write_text(COOKIE_KEY)
    (tmp / "short-key").write_text(COOKIE_KEY[:20])
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": KUBE_TOKEN}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
    source = f"http://reader:{SOURCE_PASSWORD}@127.0.0.1:{source_port}"
    jenkins_with_password = jenkins_url.replace("http://", f"http://bot:{JENKINS_URL_PASSWORD}@")
    jenkins_env = {"JENKINS_USER": "bot", "JENKINS_TOKEN": JENKINS_TOKEN,
                   "GRAYSTEPS_JOBS_REPO": "https://git.example.com/platform/graysteps.git"}
    kube = ["--kubeconfig", str(kubeconfig), "--catalog", CATALOG]
    plan = str(ROOT / "examples" / "plans" / "scenario-1.yaml")
    allowed = {"GRAYSTEPS_SYNC_URL_HOSTS": "127.0.0.1"}
    return [
        (["whitelist", "list", "--db", mysql], {}),
        (["whitelist", "add", "acme"], {"GRAYSTEPS_DB": mysql}),
        (["whitelist", "remove", "acme", "--db", mysql + "&password=" + QUERY_TOKEN], {}),
        (["whitelist", "sync", "--source", f"{source}/ids.txt?token={QUERY_TOKEN}", "--db", sqlite], allowed),
        (["whitelist", "sync", "--source", f"{source}/ids.txt?token={QUERY_TOKEN}", "--db", mysql], allowed),
        (["whitelist", "sync", "--source", f"{source}/gone?token={QUERY_TOKEN}", "--db", sqlite], allowed),
        (["whitelist", "sync", "--source", f"{source}/ids.txt?token={QUERY_TOKEN}", "--db", sqlite], {}),
        (["cookie", "--tenant", "acme", "--signed", "--db", sqlite], {"GRAYSTEPS_COOKIE_KEY": COOKIE_KEY}),
        (["cookie", "--tenant", "acme", "--signed", "--key-file", str(tmp / "key"), "--db", sqlite], {}),
        (["cookie", "--tenant", "acme", "--signed", "--key-file", str(tmp / "short-key"), "--db", sqlite], {}),
        (["cookie", "--tenant", "acme", "--signed", "--db", mysql], {"GRAYSTEPS_COOKIE_KEY": COOKIE_KEY}),
        (["serve-cookie", "--port", "0", "--db", mysql], {}),
        (["jobs", "sync", "--url", jenkins_url, "--dry-run"], jenkins_env),
        (["jobs", "sync", "--url", jenkins_with_password, "--dry-run"], jenkins_env),
        (["jobs", "sync", "--url", f"http://bot:{JENKINS_URL_PASSWORD}@127.0.0.1:1/?token={QUERY_TOKEN}"], jenkins_env),
        (["jobs", "sync", "--url", f"ftp://bot:{JENKINS_URL_PASSWORD}@x/"], jenkins_env),
        (["jobs", "sync", "--url", jenkins_url], {**jenkins_env, "JENKINS_TOKEN": JENKINS_TOKEN + "-wrong"}),
        (["jobs", "render", "--out", str(tmp / "jobs"), "--repo", f"https://bot:{DB_PASSWORD}@git.example/r.git"], {}),
        (["route", "--service", "test-a", "--strategy", "whitelist", *kube], {}),
        (["status", *kube], {}),
        (["rollback", "--all", "--db", mysql, *kube], {}),
        (["release", "--plan", plan, "--db", mysql, *kube], {}),
        (["release", "--plan", plan, *kube], {"GRAYSTEPS_DB": mysql}),
        (["verify", "--service", "test-a", "--gateway", f"http://u:{GATEWAY_PASSWORD}@127.0.0.1:1", *kube], {}),
        (["verify", "--service", "test-a", "--gateway", f"ftp://u:{GATEWAY_PASSWORD}@127.0.0.1:1", *kube], {}),
        (["--args-json-env", "ARGS"], {"ARGS": json.dumps(["whitelist", "list", "--db", mysql])}),
        (["--args-json-env", "ARGS"], {"ARGS": json.dumps(["whitelist", "list", "--db", "mysql+nodriver://u:"
                                                           + DB_PASSWORD + "@h/db"])}),
        (["--args-json-env", "ARGS"], {"ARGS": json.dumps(["whitelist", "list", "--db", "mysql+pymysql://u:"
                                                           + DB_PASSWORD + "@h:99999999/db"])}),
    ]


def test_no_test_password_or_token_appears_in_any_output(tmp_path, source_server, jenkins):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JENKINS_", "GRAYSTEPS_"))}
    seen = []
    masked_urls = 0
    for argv, extra in commands(tmp_path, source_server, jenkins.url):
        error_file = tmp_path / "error.json"
        error_file.unlink(missing_ok=True)
        run_env = {**env, "GRAYSTEPS_ERROR_FILE": str(error_file), "XDG_DATA_HOME": str(tmp_path / "xdg"), **extra}
        try:
            done = subprocess.run([sys.executable, "-m", "graysteps", *argv], capture_output=True, text=True,
                                  env=run_env, cwd=tmp_path, timeout=20)
            out, err = done.stdout, done.stderr
        except subprocess.TimeoutExpired as e:  # serve-cookie may be serving: what it printed counts too
            out, err = (e.stdout or b"").decode(), (e.stderr or b"").decode()
        written = error_file.read_text() if error_file.exists() else ""
        everything = out + err + written
        for secret in SECRETS:
            assert secret not in everything, (argv, secret, everything[:2000])
        assert "Traceback" not in err, (argv, err)
        masked_urls += everything.count(":***@")
        seen.append(argv[0])
    assert len(seen) >= 25
    assert masked_urls >= 10  # URLs were shown, masked: the check above looked at real output
