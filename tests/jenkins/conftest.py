import pytest

from tests.jenkins.fake_jenkins import FakeJenkins

USER, TOKEN = "release-bot", "11aa22bb33cc44dd55ee66ff77aa88bb99"


@pytest.fixture
def fake_jenkins():
    with FakeJenkins({USER: TOKEN}) as server:
        yield server


@pytest.fixture
def jenkins_env(monkeypatch):
    monkeypatch.setenv("JENKINS_USER", USER)
    monkeypatch.setenv("JENKINS_TOKEN", TOKEN)
    monkeypatch.setenv("GRAYSTEPS_JOBS_REPO", "https://git.example.com/platform/graysteps.git")
