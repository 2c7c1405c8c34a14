"""One source of truth: graysteps/adapters/jenkins/render.py declares each job's parameters, triggers and options,
`jobs render` writes exactly that into its config.xml, SERVICE offers the catalog's services, and no
Jenkinsfile overrides any of it with properties([...])."""

import re
from xml.etree import ElementTree as ET

import pytest

from graysteps.model.catalog import load_catalog
from graysteps.adapters.jenkins.render import Source, job_specs, render_job_xml
from tests.jenkins.cli import EXAMPLE_CATALOG, ROOT, graysteps

SOURCE = Source("https://git.example.com/platform/graysteps.git", "main", "git-read")
SERVICES = load_catalog(str(EXAMPLE_CATALOG)).names()
JOBS = job_specs(SERVICES)


def spec_parameters(job) -> list[dict]:
    out = []
    for p in job.parameters:
        entry = {"kind": p.kind, "name": p.name, "description": p.description}
        if p.kind == "choice":
            entry["choices"] = p.choices
        else:
            entry["defaultValue"] = p.default
        out.append(entry)
    return out


def test_every_jenkinsfile_in_pipelines_has_a_job_and_every_job_a_jenkinsfile():
    assert sorted(p.name for p in (ROOT / "pipelines").glob("*.Jenkinsfile")) == sorted(f"{j.name}.Jenkinsfile" for j in JOBS)


@pytest.mark.parametrize("job", JOBS, ids=lambda j: j.name)
def test_no_jenkinsfile_replaces_the_parameters_and_triggers_the_sync_wrote(job):
    # properties([...]) replaces ALL job properties on the first run: SERVICE would lose the catalog's choices.
    code = "\n".join(line.split("//")[0] for line in (ROOT / job.jenkinsfile).read_text().splitlines())
    assert not re.search(r"\bproperties\s*\(", code)


@pytest.mark.parametrize("job", JOBS, ids=lambda j: j.name)
def test_a_jenkinsfile_reads_exactly_the_parameters_its_job_declares(job):
    read = set(re.findall(r"\bparams\.(\w+)", (ROOT / job.jenkinsfile).read_text()))
    assert read == {p.name for p in job.parameters}


@pytest.mark.parametrize("job", JOBS, ids=lambda j: j.name)
def test_every_parameter_has_a_description(job):
    assert all(len(p.description) > 10 for p in job.parameters)


def test_the_jobs_use_choice_boolean_and_string_parameters():
    assert {p.kind for j in JOBS for p in j.parameters} == {"choice", "boolean", "string"}


def test_service_choices_are_the_catalogs_services_in_catalog_order(tmp_path):
    from graysteps_lab.world.fleet import write_catalog

    names = ["payments", "orders", "auth-center"]
    write_catalog(tmp_path / "catalog.yaml", names, prod_ns="prod", gray_ns="gray")
    result = graysteps("jobs", "render", "--out", str(tmp_path / "jobs"), "--repo", SOURCE.repo,
                       "--catalog", str(tmp_path / "catalog.yaml"))
    assert result.returncode == 0, result.stderr
    for job in ("gray-release", "gray-traffic", "merge-release"):
        root = ET.parse(tmp_path / "jobs" / job / "config.xml").getroot()
        service = next(e for e in root.iter("hudson.model.ChoiceParameterDefinition") if e.findtext("name") == "SERVICE")
        assert [s.text for s in service.findall("choices/a/string")] == names


def test_jobs_without_a_catalog_are_refused_and_nothing_is_written(tmp_path):
    result = graysteps("jobs", "render", "--out", str(tmp_path / "jobs"), "--repo", SOURCE.repo,
                       env={"GRAYSTEPS_CATALOG": str(tmp_path / "missing.yaml")})
    assert result.returncode == 2 and result.stdout == ""
    assert "missing.yaml" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "jobs").exists()


@pytest.mark.parametrize("job", JOBS, ids=lambda j: j.name)
def test_rendered_config_is_a_pipeline_from_scm_job_carrying_the_spec(job):
    root = ET.fromstring(render_job_xml(job, SOURCE))
    assert root.tag == "flow-definition"
    definition = root.find("definition")
    assert definition.get("class") == "org.jenkinsci.plugins.workflow.cps.CpsScmFlowDefinition"
    assert definition.findtext("scriptPath") == job.jenkinsfile
    assert definition.findtext("scm/userRemoteConfigs/hudson.plugins.git.UserRemoteConfig/url") == SOURCE.repo
    assert definition.findtext("scm/userRemoteConfigs/hudson.plugins.git.UserRemoteConfig/credentialsId") == "git-read"
    assert definition.findtext("scm/branches/hudson.plugins.git.BranchSpec/name") == "*/main"
    rendered = []
    for element in root.find("properties/hudson.model.ParametersDefinitionProperty/parameterDefinitions"):
        kind = {"hudson.model.ChoiceParameterDefinition": "choice", "hudson.model.StringParameterDefinition": "string",
                "hudson.model.BooleanParameterDefinition": "boolean"}[element.tag]
        entry = {"kind": kind, "name": element.findtext("name"), "description": element.findtext("description")}
        if kind == "choice":
            entry["choices"] = tuple(s.text for s in element.findall("choices/a/string"))
        else:
            default = element.findtext("defaultValue") or ""
            entry["defaultValue"] = default == "true" if kind == "boolean" else default
        rendered.append(entry)
    assert rendered == spec_parameters(job)
    triggers = root.find("properties/org.jenkinsci.plugins.workflow.job.properties.PipelineTriggersJobProperty/triggers")
    assert (triggers.findtext("hudson.triggers.TimerTrigger/spec") if triggers is not None else None) == job.cron
    assert (triggers.findtext("hudson.triggers.SCMTrigger/spec") if triggers is not None else None) == job.poll_scm
    assert root.findtext("properties/jenkins.model.BuildDiscarderProperty/strategy/numToKeep") == str(job.keep_builds)


def test_render_writes_one_config_per_job_and_says_so(tmp_path):
    result = graysteps("jobs", "render", "--out", str(tmp_path / "jobs"), "--repo", SOURCE.repo, "--credentials-id", "git-read")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"wrote {tmp_path / 'jobs' / j.name / 'config.xml'}" for j in JOBS]
    for job in JOBS:
        assert (tmp_path / "jobs" / job.name / "config.xml").read_text() == render_job_xml(job, SOURCE)


def test_render_without_repo_uses_the_environment_then_the_checkout(tmp_path):
    result = graysteps("jobs", "render", "--out", str(tmp_path), env={"GRAYSTEPS_JOBS_REPO": "https://git.example.com/x.git"})
    assert "<url>https://git.example.com/x.git</url>" in (tmp_path / "gray-release" / "config.xml").read_text()
    outside = tmp_path / "not-a-checkout"
    outside.mkdir()
    result = graysteps("jobs", "render", "--out", str(tmp_path / "o"), cwd=outside, env={"GIT_CEILING_DIRECTORIES": str(tmp_path)})
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == "graysteps jobs render: no repository for the Jenkinsfiles: pass --repo URL or set GRAYSTEPS_JOBS_REPO"
    assert not (tmp_path / "o").exists()


def test_library_version_resource_matches_the_python_package():
    from graysteps import __version__

    assert (ROOT / "resources/io/graysteps/version.txt").read_text().strip() == __version__


def test_the_cli_decodes_the_dollar_escape_the_groovy_runner_sends(tmp_path):
    # vars/graystepsRun.groovy sends '$' as \u0024 because Jenkins' withEnv would expand $VAR in env values
    out = tmp_path / "a$(id)b"
    args_json = '["jobs","render","--out=' + str(out).replace("$", "\\u0024") + '"]'
    assert "$" not in args_json
    result = graysteps("--args-json-env", "GRAYSTEPS_ARGS", env={"GRAYSTEPS_ARGS": args_json, "GRAYSTEPS_JOBS_REPO": "https://g.example.com/r.git"})
    assert result.returncode == 0, result.stderr
    assert (out / "gray-release" / "config.xml").is_file()
