"""The Jenkins jobs graysteps ships, as data, and their config.xml.

Each job is a pipeline-from-SCM job (`flow-definition` + `CpsScmFlowDefinition`) running one of
`pipelines/*.Jenkinsfile`. Its parameters, triggers and options are declared here only, and
`graysteps jobs render|sync` writes them into the job's config.xml, so the UI exists before the first run.
The Jenkinsfiles never call `properties([...])`, which would replace them (tests/jenkins/test_job_specs.py
checks that, and that every `params.X` a Jenkinsfile reads is declared here).

The SERVICE choices are the catalog's services, in catalog order (the first is the default): with 60
services, the dropdowns follow the catalog instead of a list kept by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence
from xml.etree import ElementTree as ET

XML_HEADER = "<?xml version='1.1' encoding='UTF-8'?>\n"  # what Jenkins itself writes


@dataclass(frozen=True)
class Parameter:
    kind: str  # "choice" | "string" | "boolean"
    name: str
    description: str
    default: str | bool = ""  # choice: the first choice is the default
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobSpec:
    name: str
    description: str
    parameters: tuple[Parameter, ...]
    cron: str | None = None  # TimerTrigger spec
    poll_scm: str | None = None  # SCMTrigger spec ("" = only a push hook triggers it)
    keep_builds: int = 50  # buildDiscarder(logRotator(numToKeepStr: ...))
    disable_concurrent: bool = False  # disableConcurrentBuilds()
    script_path: str = field(default="")

    @property
    def jenkinsfile(self) -> str:
        return self.script_path or f"pipelines/{self.name}.Jenkinsfile"


WEIGHT = Parameter("string", "GRAY_WEIGHT", "Gray share in percent (0-100), used when STRATEGY is weight.", "20")


def job_specs(services: Sequence[str]) -> tuple[JobSpec, ...]:
    """Every job graysteps ships; SERVICE offers `services` (the catalog's names, the first is the default)."""
    if not services:
        raise ValueError("job_specs: the catalog has no services to offer as SERVICE choices")

    def _service(description: str) -> Parameter:
        return Parameter("choice", "SERVICE", description, choices=tuple(services))

    return (
        JobSpec(
            "gray-release",
            "Build, push, deploy to gray, route and verify one service; rolls back to prod if verify fails.",
            (
                _service("Service to release (from the catalog)."),
                Parameter("string", "GIT_REF", "Branch, tag or commit to build when IMAGE is empty.", "main"),
                Parameter("string", "IMAGE", "Image already in the registry to release; empty = build GIT_REF."),
                Parameter("choice", "STRATEGY", "How traffic reaches gray: whitelisted tenants (cookie), a weight, 50/50, "
                          "or callers labelled gray.", choices=("whitelist", "weight", "balanced", "linked")),
                WEIGHT,
                Parameter("boolean", "DRY_RUN", "Build without pushing and show the route diff; deploy and change nothing.", False),
            ),
        ),
        JobSpec(
            "gray-traffic",
            "Change the traffic strategy of a running gray release; promote asks for confirmation.",
            (
                _service("Service whose traffic changes (from the catalog)."),
                Parameter("choice", "STRATEGY", "New strategy: whitelist, weight, 50/50, linked, promote (all gray) or "
                          "rollback (all prod).", choices=("whitelist", "weight", "balanced", "linked", "promote", "rollback")),
                WEIGHT,
                Parameter("boolean", "DRY_RUN", "Show the route diff (apiserver dry run); change nothing.", False),
            ),
            keep_builds=100,
        ),
        JobSpec(
            "merge-release",
            "On every merge: build, push, deploy to gray, whitelist strategy, verify; rolls back if verify fails.",
            (_service("Service this repository builds (webhook builds use the first)."),),
            poll_scm="",
        ),
        JobSpec(
            "whitelist-sync",
            "Every 30 minutes: make the tenant whitelist exactly its source.",
            (
                Parameter("string", "SOURCE", "Tenant list: a file in this repository or an http(s) URL (one id per line, "
                          "or CSV with tenant_id).", "whitelist/tenants.csv"),
                Parameter("boolean", "DRY_RUN", "Print what would change; write nothing.", False),
            ),
            cron="H/30 * * * *",
            keep_builds=200,
            disable_concurrent=True,
        ),
        JobSpec(
            "emergency-rollback",
            "One click: every service, or a chosen set, back to prod.",
            (
                Parameter("boolean", "ALL", "Roll back every service graysteps manages.", True),
                Parameter("string", "SERVICES", "When ALL is off: services to roll back, separated by commas or spaces "
                          "(e.g. test-a, test-b)."),
                Parameter("boolean", "DRY_RUN", "Apiserver dry run: report what would change; change nothing.", False),
            ),
            keep_builds=100,
        ),
        JobSpec(
            "fleet-status",
            "Which services are in gray, on which strategy, at which version; red when routes were changed by hand.",
            (
                Parameter("string", "SERVICES", "Only these services, separated by commas or spaces; empty = all."),
            ),
            cron="H/15 * * * *",
            keep_builds=200,
        ),
        JobSpec(
            "gray-progressive",
            "Run a progressive plan: each schedule step a stage, gated by metrics; rolls every service back on a bad verdict.",
            (
                Parameter("string", "PLAN", "Progressive plan file in this repository (steps, pauses, analyses).",
                          "plans/progressive.yaml"),
                Parameter("string", "GIT_REF", "Branch, tag or commit holding the plan.", "main"),
                Parameter("string", "PROMETHEUS", "Prometheus URL; empty = the plan's analysis.prometheus or the agent's "
                          "$GRAYSTEPS_PROMETHEUS."),
            ),
            keep_builds=100,
        ),
    )


@dataclass(frozen=True)
class Source:
    """Where Jenkins fetches the Jenkinsfiles from."""

    repo: str
    branch: str = "main"
    credentials_id: str | None = None


def _text(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _parameter_xml(parent: ET.Element, p: Parameter) -> None:
    tag = {"choice": "Choice", "string": "String", "boolean": "Boolean"}[p.kind]
    element = _text(parent, f"hudson.model.{tag}ParameterDefinition")
    _text(element, "name", p.name)
    _text(element, "description", p.description)
    if p.kind == "choice":
        array = _text(_text(element, "choices", **{"class": "java.util.Arrays$ArrayList"}), "a", **{"class": "string-array"})
        for choice in p.choices:
            _text(array, "string", choice)
    elif p.kind == "boolean":
        _text(element, "defaultValue", "true" if p.default else "false")
    else:
        _text(element, "defaultValue", str(p.default))
        _text(element, "trim", "true")


def _triggers_xml(parent: ET.Element, job: JobSpec) -> None:
    if job.cron is None and job.poll_scm is None:
        return
    triggers = _text(_text(parent, "org.jenkinsci.plugins.workflow.job.properties.PipelineTriggersJobProperty"), "triggers")
    if job.cron is not None:
        _text(_text(triggers, "hudson.triggers.TimerTrigger"), "spec", job.cron)
    if job.poll_scm is not None:
        scm_trigger = _text(triggers, "hudson.triggers.SCMTrigger")
        _text(scm_trigger, "spec", job.poll_scm)
        _text(scm_trigger, "ignorePostCommitHooks", "false")


def _build_properties_xml(parent: ET.Element, job: JobSpec) -> None:
    strategy = _text(_text(parent, "jenkins.model.BuildDiscarderProperty"), "strategy", **{"class": "hudson.tasks.LogRotator"})
    for tag, value in (("daysToKeep", -1), ("numToKeep", job.keep_builds), ("artifactDaysToKeep", -1), ("artifactNumToKeep", -1)):
        _text(strategy, tag, str(value))
    if job.disable_concurrent:
        _text(parent, "org.jenkinsci.plugins.workflow.job.properties.DisableConcurrentBuildsJobProperty")


def _definition_xml(parent: ET.Element, job: JobSpec, source: Source) -> None:
    definition = _text(parent, "definition", **{"class": "org.jenkinsci.plugins.workflow.cps.CpsScmFlowDefinition"})
    scm = _text(definition, "scm", **{"class": "hudson.plugins.git.GitSCM"})
    _text(scm, "configVersion", "2")
    remote = _text(_text(scm, "userRemoteConfigs"), "hudson.plugins.git.UserRemoteConfig")
    _text(remote, "url", source.repo)
    if source.credentials_id:
        _text(remote, "credentialsId", source.credentials_id)
    _text(_text(_text(scm, "branches"), "hudson.plugins.git.BranchSpec"), "name", f"*/{source.branch}")
    _text(scm, "doGenerateSubmoduleConfigurations", "false")
    _text(scm, "submoduleCfg", **{"class": "empty-list"})
    _text(scm, "extensions")
    _text(definition, "scriptPath", job.jenkinsfile)
    _text(definition, "lightweight", "true")


def render_job_xml(job: JobSpec, source: Source) -> str:
    """config.xml of one pipeline-from-SCM job, parameters and triggers included."""
    root = ET.Element("flow-definition")
    _text(root, "actions")
    _text(root, "description", f"{job.description}\nManaged by `graysteps jobs sync`: edit {job.jenkinsfile}, "
                               "graysteps/adapters/jenkins/render.py or the catalog, not this page.")
    _text(root, "keepDependencies", "false")
    properties = _text(root, "properties")
    definitions = _text(_text(properties, "hudson.model.ParametersDefinitionProperty"), "parameterDefinitions")
    for parameter in job.parameters:
        _parameter_xml(definitions, parameter)
    _triggers_xml(properties, job)
    _build_properties_xml(properties, job)
    _definition_xml(root, job, source)
    _text(root, "triggers")
    _text(root, "disabled", "false")
    ET.indent(root)
    return XML_HEADER + ET.tostring(root, encoding="unicode") + "\n"


def render_all(source: Source, services: Sequence[str]) -> dict[str, str]:
    """Every job's config.xml, by job name; SERVICE offers `services`."""
    return {job.name: render_job_xml(job, source) for job in job_specs(services)}


def write_all(out_dir: str | Path, source: Source, services: Sequence[str]) -> list[Path]:
    """Write DIR/<job>/config.xml for every job; returns the files written."""
    written = []
    for name, xml in render_all(source, services).items():
        path = Path(out_dir) / name / "config.xml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(xml, encoding="utf-8")
        written.append(path)
    return written
