"""Runs the Groovy tests (tests/groovy: JenkinsPipelineUnit 1.1 over vars/ and pipelines/) from the test command.

Maven runs offline: tools/setup-groovy.sh (called by tools/setup.sh) fetches the dependencies once.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

from tests.jenkins.cli import ROOT

POM = ROOT / "tests/groovy/pom.xml"
REPORTS = ROOT / "tests/groovy/target/surefire-reports"
JDK17 = Path("/usr/lib/jvm/java-17-openjdk-amd64")


def test_groovy_steps_and_pipelines_pass_under_jenkins_pipeline_unit():
    mvn = shutil.which("mvn")
    assert mvn, "Maven is missing: apt-get install maven openjdk-17-jdk-headless, then tools/setup-groovy.sh"
    env = dict(os.environ)
    # RealCliTest runs the installed `graysteps`: the console script lives next to this interpreter
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    if JDK17.is_dir() and not env.get("JAVA_HOME"):
        env["JAVA_HOME"] = str(JDK17)
    shutil.rmtree(REPORTS, ignore_errors=True)
    result = subprocess.run([mvn, "-B", "-q", "-o", "-f", str(POM), "test"], capture_output=True, text=True,
                            env=env, timeout=1200)
    output = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, f"Groovy tests failed (offline Maven: did tools/setup-groovy.sh run?)\n{output}"
    suites = [ET.parse(p).getroot() for p in REPORTS.glob("TEST-*.xml")]
    counts = {s.get("name"): int(s.get("tests")) for s in suites}
    assert sum(int(s.get("failures")) + int(s.get("errors")) for s in suites) == 0
    assert set(counts) >= {"graysteps.StepsTest", "graysteps.InjectionTest", "graysteps.PipelinesTest",
                           "graysteps.GrayEnvTest", "graysteps.RealCliTest"}
    assert sum(counts.values()) >= 44
