#!/bin/sh
# Prefetch everything the Groovy tests (tests/groovy: JenkinsPipelineUnit 1.1, Groovy 2.4.21, JUnit 4) need from
# Maven Central, so that `mvn -B -q -o -f tests/groovy/pom.xml test` then works offline.
# Uses JDK 17 (Groovy 2.4 does not run on newer JDKs). Maven's local repository is ~/.m2/repository unless
# MAVEN_REPO_LOCAL is set (then pass the same -Dmaven.repo.local=... to the test command).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${JAVA_HOME:-}" ] && [ -d /usr/lib/jvm/java-17-openjdk-amd64 ]; then
    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
    export JAVA_HOME
fi
set -- -B -q -f "$root/tests/groovy/pom.xml"
if [ -n "${MAVEN_REPO_LOCAL:-}" ]; then
    set -- "$@" "-Dmaven.repo.local=$MAVEN_REPO_LOCAL"
fi
# go-offline alone misses what plugins resolve at run time (surefire's JUnit 4 provider, plexus-utils), so the
# whole lifecycle runs once, up to starting surefire, with a test filter that matches nothing.
mvn "$@" dependency:go-offline
mvn "$@" test -Dtest='PrefetchOnly*' -Dsurefire.failIfNoSpecifiedTests=false
echo "setup-groovy: Maven dependencies for tests/groovy are cached; run: mvn -B -q -o -f tests/groovy/pom.xml test"
