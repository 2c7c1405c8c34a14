#!/usr/bin/env bash
# Build the control plane from the Go module proxy, once per machine:
# etcd and kube-apiserver (the API), kube-controller-manager and kube-scheduler
# (Deployments become ReplicaSets and bound Pods), and kwok (fake nodes whose
# pods become Running without a kubelet).
#
# The binaries are cached outside the repo, keyed by version:
#   ${GRAYSTEPS_CACHE:-~/.cache/graysteps}/testenv/k8s-<ver>-etcd-<ver>/
# Prints that directory on stdout. Progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION=v1.35.4
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0   # no replace lines: plain `go install`; needs Go 1.26
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
cache=${GRAYSTEPS_CACHE:-$HOME/.cache/graysteps}
out="$cache/testenv/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"

binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
complete=1
for b in "${binaries[@]}"; do [[ -x "$out/$b" ]] || complete=0; done
if (( complete )); then
  echo "$out"; exit 0
fi
command -v go >/dev/null || { echo "build.sh: the 'go' command is missing; install Go 1.25+ (https://go.dev/doc/install)" >&2; exit 1; }
mkdir -p "$out.tmp"
cd "$here"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
ld="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
echo "building etcd $ETCD_VERSION (cold: about a minute) ..." >&2
go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
echo "building kube-apiserver $K8S_VERSION (cold: about 4 minutes on 2 cores, measured) ..." >&2
go build -trimpath -ldflags "$ld" -o "$out.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
echo "building kube-controller-manager, kube-scheduler $K8S_VERSION ..." >&2
go build -trimpath -ldflags "$ld" -o "$out.tmp/kube-controller-manager" k8s.io/kubernetes/cmd/kube-controller-manager
go build -trimpath -ldflags "$ld" -o "$out.tmp/kube-scheduler" k8s.io/kubernetes/cmd/kube-scheduler
echo "building kwok $KWOK_VERSION ..." >&2
(cd "$out.tmp" && GOFLAGS= GOBIN="$out.tmp" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION")
rm -rf "$out"; mv "$out.tmp" "$out"
echo "$out"
