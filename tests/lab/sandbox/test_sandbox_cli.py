"""`graysteps sandbox` refusals and answers that need no server."""

from __future__ import annotations

from tests.fixtures.sandbox import graysteps


def test_up_refuses_a_directory_that_is_not_a_sandbox_and_touches_nothing(tmp_path):
    keep = tmp_path / "precious.txt"
    keep.write_text("mine")
    done = graysteps("sandbox", "up", "--dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().count("\n") == 0
    assert f"--dir {tmp_path}: not empty and not a sandbox directory" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"] and keep.read_text() == "mine"


def test_up_refuses_an_unknown_catalog_before_creating_anything(tmp_path):
    target = tmp_path / "sb"
    done = graysteps("sandbox", "up", "--dir", str(target), "--catalog", str(tmp_path / "missing.yaml"))
    assert done.returncode == 2 and done.stdout == ""
    assert "missing.yaml not found" in done.stderr
    assert not target.exists()


def test_up_refuses_a_timeout_that_is_not_positive(tmp_path):
    done = graysteps("sandbox", "up", "--dir", str(tmp_path / "sb"), "--timeout", "0")
    assert done.returncode == 2 and done.stdout == ""
    assert "--timeout 0 is not allowed" in done.stderr


def test_status_and_down_of_a_sandbox_that_never_ran(tmp_path):
    status = graysteps("sandbox", "status", "--dir", str(tmp_path))
    assert status.returncode == 3 and status.stdout.strip() == f"sandbox not running in {tmp_path}"
    down = graysteps("sandbox", "down", "--dir", str(tmp_path))
    assert down.returncode == 0 and "not running" in down.stdout


def test_a_stale_pid_file_of_a_dead_supervisor_counts_as_not_running(tmp_path):
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / ".graysteps-sandbox").write_text("")
    (tmp_path / "supervisor.pid").write_text(str(dead.pid))
    status = graysteps("sandbox", "status", "--dir", str(tmp_path))
    assert status.returncode == 3


def test_a_sandbox_that_cannot_start_says_why_and_leaves_no_process(tmp_path):
    empty = tmp_path / "no-binaries"
    empty.mkdir()
    target = tmp_path / "sb"
    done = graysteps("sandbox", "up", "--dir", str(target), env={"GRAYSTEPS_KUBE_BINARIES": str(empty)})
    assert done.returncode == 1
    assert done.stderr.startswith("graysteps sandbox: the sandbox did not start:")
    assert f"{empty}/etcd is missing" in done.stderr
    assert not (target / "supervisor.pid").exists()
    status = graysteps("sandbox", "status", "--dir", str(target))
    assert status.returncode == 3
