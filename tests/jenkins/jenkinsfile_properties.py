"""Read the `properties([...])` of a scripted Jenkinsfile: parameters, triggers, build discarder.

Just enough Groovy for our Jenkinsfiles: one call per line, single-quoted strings, list literals, booleans.
"""

import re

CALL = re.compile(r"^\s*(choice|string|booleanParam)\((.*)\),?\s*$")
ARG = re.compile(r"(\w+):\s*('(?:[^'\\]|\\.)*'|\[[^\]]*\]|true|false)")


def _value(text: str):
    if text in ("true", "false"):
        return text == "true"
    if text.startswith("["):
        return tuple(re.findall(r"'((?:[^'\\]|\\.)*)'", text))
    return text[1:-1].replace("\\'", "'")


def parameters(jenkinsfile: str) -> list[dict]:
    block = re.search(r"parameters\(\[\n(.*?)\n\s*\]\)", jenkinsfile, re.S)
    found = []
    for line in block.group(1).splitlines() if block else []:
        match = CALL.match(line)
        assert match, f"unparsed parameter line: {line!r}"
        kind = {"booleanParam": "boolean"}.get(match.group(1), match.group(1))
        found.append({"kind": kind} | {k: _value(v) for k, v in ARG.findall(match.group(2))})
    return found


def triggers(jenkinsfile: str) -> dict:
    found = {}
    for kind, spec in re.findall(r"\b(cron|pollSCM)\('([^']*)'\)", jenkinsfile):
        found[kind] = spec
    return found


def keep_builds(jenkinsfile: str) -> int | None:
    match = re.search(r"logRotator\(numToKeepStr: '(\d+)'\)", jenkinsfile)
    return int(match.group(1)) if match else None


def disables_concurrent_builds(jenkinsfile: str) -> bool:
    return "disableConcurrentBuilds()" in jenkinsfile
