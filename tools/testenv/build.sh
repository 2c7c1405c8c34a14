#!/usr/bin/env bash
# Build kube-apiserver and etcd from the Go module proxy, once per machine.
#
# The binaries are cached outside the repo, keyed by version:
#   ${GRAYSTEPS_CACHE:-~/.cache/graysteps}/testenv/k8s-<ver>-etcd-<ver>/{kube-apiserver,etcd}
# Prints that directory on stdout. Progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION=v1.35.4
ETCD_VERSION=v3.6.16
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
cache=${GRAYSTEPS_CACHE:-$HOME/.cache/graysteps}
out="$cache/testenv/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"

if [[ -x "$out/kube-apiserver" && -x "$out/etcd" ]]; then
  echo "$out"; exit 0
fi
command -v go >/dev/null || { echo "build.sh: the 'go' command is missing; install Go 1.25+ (https://go.dev/doc/install)" >&2; exit 1; }
mkdir -p "$out.tmp"
cd "$here"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
ld="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
echo "building etcd $ETCD_VERSION (cold: a few minutes) ..." >&2
go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
echo "building kube-apiserver $K8S_VERSION (cold: 10-20 minutes on 2 cores) ..." >&2
go build -trimpath -ldflags "$ld" -o "$out.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
rm -rf "$out"; mv "$out.tmp" "$out"
echo "$out"
