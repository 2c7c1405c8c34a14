#!/usr/bin/env bash
# Build Prometheus from the Go module proxy, once per machine, for the lab's
# metric source (progressive delivery's analysis queries it).
#
# github.com/prometheus/prometheus has no replace lines, so `go install
# pkg@version` works. Without the `builtinassets` tag and an npm build the web
# UI is absent; the HTTP API, which is all the lab uses, is complete.
#
# Cached outside the repo, keyed by version:
#   ${GRAYSTEPS_CACHE:-~/.cache/graysteps}/testenv/prometheus-<version>/
# Prints that directory on stdout. Progress goes to stderr.
set -euo pipefail
PROMETHEUS_VERSION=v0.316.0   # Prometheus 3.x; newest v0.316.x on the Go proxy, 2026-11
cache=${GRAYSTEPS_CACHE:-$HOME/.cache/graysteps}
out="$cache/testenv/prometheus-$PROMETHEUS_VERSION"
if [[ -x "$out/prometheus" ]]; then
  echo "$out"; exit 0
fi
command -v go >/dev/null || { echo "build-prometheus.sh: the 'go' command is missing; install Go 1.26+" >&2; exit 1; }
rm -rf "$out.tmp"; mkdir -p "$out.tmp"
export CGO_ENABLED=0 GOFLAGS= GOBIN="$out.tmp"
echo "building prometheus $PROMETHEUS_VERSION (cold: about 5 minutes on 2 cores, 3 GB of memory) ..." >&2
(cd "$out.tmp" && go install -trimpath -ldflags "-s -w" "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION")
rm -rf "$out"; mv "$out.tmp" "$out"
echo "$out"
