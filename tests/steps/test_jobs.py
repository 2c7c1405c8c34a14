"""`graysteps jobs sync` against the fake Jenkins REST API: creates, then changes nothing, then updates."""

from tests.jenkins.cli import graysteps
from tests.fixtures.jenkins import TOKEN, USER

JOBS = ["gray-release", "gray-traffic", "merge-release", "whitelist-sync", "emergency-rollback", "fleet-status",
        "gray-progressive"]
ENV = {"JENKINS_USER": USER, "JENKINS_TOKEN": TOKEN, "GRAYSTEPS_JOBS_REPO": "https://git.example.com/platform/graysteps.git"}


def lines(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()]


def test_first_sync_creates_every_job_with_its_rendered_config(fake_jenkins, tmp_path):
    result = graysteps("jobs", "sync", "--url", fake_jenkins.url, env=ENV)
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout)[:-1] == [["created", name] for name in JOBS]
    assert result.stdout.splitlines()[-1] == f"jobs sync: Jenkins 2.479.3 at {fake_jenkins.url}: {len(JOBS)} created"
    graysteps("jobs", "render", "--out", str(tmp_path), env=ENV)
    for name in JOBS:
        assert fake_jenkins.item(name).config == (tmp_path / name / "config.xml").read_text()


def test_second_sync_reports_everything_unchanged_and_writes_nothing(fake_jenkins):
    graysteps("jobs", "sync", "--url", fake_jenkins.url, env=ENV)
    writes_before = len(fake_jenkins.writes())
    result = graysteps("jobs", "sync", "--url", fake_jenkins.url, env=ENV)
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout)[:-1] == [["unchanged", name] for name in JOBS]
    assert len(fake_jenkins.writes()) == writes_before


def test_a_changed_job_is_updated_and_only_that_one(fake_jenkins):
    graysteps("jobs", "sync", "--url", fake_jenkins.url, env=ENV)
    fake_jenkins.item("whitelist-sync").config = fake_jenkins.item("whitelist-sync").config.replace("H/30 * * * *", "@daily")
    result = graysteps("jobs", "sync", "--url", fake_jenkins.url, env=ENV)
    assert result.returncode == 0, result.stderr
    assert ["updated", "whitelist-sync"] in lines(result.stdout)
    assert sum(1 for line in lines(result.stdout) if line[0] == "unchanged") == len(JOBS) - 1
    assert "H/30 * * * *" in fake_jenkins.item("whitelist-sync").config
    assert [w for w in fake_jenkins.writes() if w[1].endswith("/config.xml")] == [("POST", "/job/whitelist-sync/config.xml")]


def test_a_new_branch_updates_every_job(fake_jenkins):
    graysteps("jobs", "sync", "--url", fake_jenkins.url, env=ENV)
    result = graysteps("jobs", "sync", "--url", fake_jenkins.url, "--branch", "release/2", env=ENV)
    assert lines(result.stdout)[:-1] == [["updated", name] for name in JOBS]
    assert "<name>*/release/2</name>" in fake_jenkins.item("gray-release").config


def test_dry_run_reports_what_would_change_and_writes_nothing(fake_jenkins):
    result = graysteps("jobs", "sync", "--url", fake_jenkins.url, "--folder", "gray/ops", "--dry-run", env=ENV)
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout)[:-1] == [["would", "create", "folder", "gray"], ["would", "create", "folder", "gray/ops"]] + [
        ["would", "create", f"gray/ops/{name}"] for name in JOBS]
    assert result.stdout.rstrip().endswith("(dry run: nothing written)")
    assert fake_jenkins.writes() == []
    assert fake_jenkins.root.children == {}


def test_folder_is_created_when_missing_and_jobs_go_inside_it(fake_jenkins):
    result = graysteps("jobs", "sync", "--url", fake_jenkins.url, "--folder", "gray/ops", env=ENV)
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout)[:2] == [["created", "folder", "gray"], ["created", "folder", "gray/ops"]]
    assert fake_jenkins.item("gray/ops/gray-release").kind == "job"
    assert ("POST", "/job/gray/job/ops/createItem") in fake_jenkins.writes()
    again = graysteps("jobs", "sync", "--url", fake_jenkins.url, "--folder", "gray/ops", env=ENV)
    assert lines(again.stdout)[:-1] == [["unchanged", f"gray/ops/{name}"] for name in JOBS]


def test_missing_credentials_are_bad_input_and_nothing_is_sent(fake_jenkins):
    without_token = {k: v for k, v in ENV.items() if k != "JENKINS_TOKEN"}
    result = graysteps("jobs", "sync", "--url", fake_jenkins.url, env=without_token)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "graysteps jobs sync: set JENKINS_USER and JENKINS_TOKEN (a Jenkins API token) in the environment; "
        "they are never taken from the command line"]
    assert fake_jenkins.requests == []


def test_a_wrong_token_fails_clearly_without_printing_the_token_and_creates_nothing(fake_jenkins):
    result = graysteps("jobs", "sync", "--url", fake_jenkins.url, env=ENV | {"JENKINS_TOKEN": "not-the-token-0f0f0f"})
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "rejected the user or token" in result.stderr and repr(USER) in result.stderr
    assert "not-the-token-0f0f0f" not in result.stderr
    assert fake_jenkins.writes() == []


def test_bad_url_and_bad_folder_are_rejected_before_any_request(fake_jenkins):
    for args, bad in ((["--url", "ftp://jenkins"], "'ftp://jenkins'"),
                      (["--url", fake_jenkins.url, "--folder", "../etc"], "'../etc'"),
                      (["--url", fake_jenkins.url, "--branch=--upload-pack=x"], "'--upload-pack=x'")):
        result = graysteps("jobs", "sync", *args, env=ENV)
        assert result.returncode == 2, args
        assert result.stdout == ""
        assert bad in result.stderr
    assert fake_jenkins.requests == []


def test_an_unreachable_jenkins_fails_with_one_clear_line():
    from graysteps_lab.world.ports import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there, and no port-0 bind takes it meanwhile
    result = graysteps("jobs", "sync", "--url", url, env=ENV)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"graysteps jobs sync: Jenkins at {url} did not answer")


def test_a_job_jenkins_refuses_stops_the_sync_naming_the_job_and_what_was_done(fake_jenkins, monkeypatch):
    from graysteps.adapters.jenkins import render as jenkins_jobs, sync as jenkins_sync
    from graysteps.errors import GraystepsError

    jobs = jenkins_jobs.render_all(jenkins_jobs.Source("https://git.example.com/g.git"), ["test-a", "test-b"])
    jobs["merge-release"] = "<flow-definition><unclosed></flow-definition>"
    server = jenkins_sync.connect(fake_jenkins.url, USER, TOKEN)
    try:
        jenkins_sync.sync_jobs(server, jobs)
    except GraystepsError as e:
        assert e.message.startswith("job merge-release: ")
        assert "Done before it: gray-release created, gray-traffic created." in e.message
        assert [c.name for c in e.result] == ["gray-release", "gray-traffic"]
    else:
        raise AssertionError("a config Jenkins cannot read must stop the sync")
    assert fake_jenkins.item("merge-release") is None and fake_jenkins.item("whitelist-sync") is None
