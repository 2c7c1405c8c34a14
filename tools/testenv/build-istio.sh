#!/usr/bin/env bash
# Build Istio's control plane from the Go module proxy, once per machine:
# pilot-discovery (istiod) and istioctl (for `istioctl analyze`).
#
# istio.io/istio has no replace lines, so `go install pkg@version` works. It
# publishes only pseudo-versions; ISTIO_VERSION below is a commit of master
# after the 1.31 branch cut (1.31-dev; the release-1.30 commits' dependencies
# are not all served by the module proxy). It requires istio.io/api
# v1.31.0-rc.0.0.20260824154656-b943409680a7, and the lab installs the CRDs of
# exactly that istio.io/api version (graysteps_lab.world.kube.ISTIO_API_MODULE).
#
# Cached outside the repo, keyed by version:
#   ${GRAYSTEPS_CACHE:-~/.cache/graysteps}/testenv/istio-<version>/
# Prints that directory on stdout. Progress goes to stderr.
set -euo pipefail
ISTIO_VERSION=v0.0.0-20260827124520-eed52ebb66ad   # master after the 1.31 branch cut (1.31-dev), 2026-08-27
cache=${GRAYSTEPS_CACHE:-$HOME/.cache/graysteps}
out="$cache/testenv/istio-$ISTIO_VERSION"
if [[ -x "$out/pilot-discovery" && -x "$out/istioctl" ]]; then
  echo "$out"; exit 0
fi
command -v go >/dev/null || { echo "build-istio.sh: the 'go' command is missing; install Go 1.25+" >&2; exit 1; }
rm -rf "$out.tmp"; mkdir -p "$out.tmp"
export CGO_ENABLED=0 GOFLAGS= GOBIN="$out.tmp"
echo "building pilot-discovery (istiod) $ISTIO_VERSION (cold: about 13 minutes on 2 cores) ..." >&2
(cd "$out.tmp" && go install -trimpath -ldflags "-s -w" "istio.io/istio/pilot/cmd/pilot-discovery@$ISTIO_VERSION")
echo "building istioctl $ISTIO_VERSION (mostly shared with pilot-discovery) ..." >&2
(cd "$out.tmp" && go install -trimpath -ldflags "-s -w" "istio.io/istio/istioctl/cmd/istioctl@$ISTIO_VERSION")
rm -rf "$out"; mv "$out.tmp" "$out"
echo "$out"
