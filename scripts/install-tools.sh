#!/usr/bin/env bash
# Installs the pinned command-line tools that the deployment and load tests use, into
# .cache/tools/ (gitignored; no root needed):
#   helm      HELM_VERSION, `go install helm.sh/helm/v3/cmd/helm@HELM_VERSION` with the -X
#             link flags of helm's release build (version, default Kubernetes version)
#   ghz       GHZ_VERSION,  `go install github.com/bojand/ghz/cmd/ghz@GHZ_VERSION`
#   promtool  the one on PATH if any; else taken out of Debian's `prometheus` package
#             (`apt-get download`, nothing is installed system-wide); without apt,
#             `go install github.com/prometheus/prometheus/cmd/promtool@PROMTOOL_VERSION`
#
# Usage: scripts/install-tools.sh [TOOL...]    install what is missing (default: all three)
#        scripts/install-tools.sh --path TOOL  print the tool's path; exit 1 when it is missing
#
# Go: `go` on PATH, else /usr/local/go/bin/go. Go's own module and build caches are used
# (GOMODCACHE, GOCACHE: outside the source tree); where Go has none (no HOME), they go to
# .cache/go/. `go install` stamps no version into the binaries, so the folder names carry it.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

HELM_VERSION=v3.19.0
# The Kubernetes version helm's release binary assumes (its Makefile derives it from the
# k8s.io/client-go it builds with: v0.34 for helm v3.19). Without it `helm template` assumes 1.20
# and refuses the chart's kubeVersion (>= 1.25).
HELM_KUBE_MAJOR=1
HELM_KUBE_MINOR=34
GHZ_VERSION=v0.120.0
PROMTOOL_VERSION=v0.316.0   # Go module version of Prometheus 3.x; only used without apt
tools="${repo}/.cache/tools"

# tool_path TOOL: where TOOL is (or goes).
tool_path() {
  case "$1" in
    helm) echo "${tools}/helm-${HELM_VERSION}/helm" ;;
    ghz) echo "${tools}/ghz-${GHZ_VERSION}/ghz" ;;
    promtool) command -v promtool || echo "${tools}/promtool/promtool" ;;
    *) echo "install-tools.sh: unknown tool '$1' (helm, ghz, promtool)" >&2; return 2 ;;
  esac
}

# go_install DIR MODULE@VERSION [GO FLAGS...]: builds the module's command into DIR.
go_install() {
  local go
  go="$(command -v go || true)"
  [ -n "${go}" ] || go=/usr/local/go/bin/go
  [ -x "${go}" ] || { echo "install-tools.sh: the Go toolchain is needed for $2" >&2; exit 1; }
  # -modcacherw: a module cache under .cache/ stays deletable with rm -rf.
  export GOFLAGS=-modcacherw
  if [ -z "$("${go}" env GOPATH)" ]; then export GOPATH="${repo}/.cache/go"; fi
  case "$("${go}" env GOCACHE)" in ""|off) export GOCACHE="${repo}/.cache/go/build-cache" ;; esac
  echo "install-tools.sh: go install $2 ($("${go}" version | cut -d' ' -f3))" >&2
  mkdir -p "$1"
  # Into a temporary folder first: an interrupted build leaves no half-made tool behind.
  rm -rf "$1.tmp"
  GOBIN="$1.tmp" "${go}" install "${@:3}" "$2"
  mv "$1.tmp/"* "$1/" && rmdir "$1.tmp"
}

# promtool_from_debian DIR: extracts usr/bin/promtool of Debian's prometheus package into DIR.
promtool_from_debian() {
  local work
  work="$(mktemp -d)"
  local sandbox=()
  # As root apt downloads as user _apt, which cannot write to a mktemp folder.
  [ "$(id -u)" -ne 0 ] || sandbox=(-o APT::Sandbox::User=root)
  (cd "${work}" && apt-get download -qq "${sandbox[@]}" prometheus) || { rm -rf "${work}"; return 1; }
  dpkg-deb -x "${work}"/prometheus_*.deb "${work}/root"
  mkdir -p "$1"
  mv "${work}/root/usr/bin/promtool" "$1/promtool"
  echo "install-tools.sh: promtool from $(basename "${work}"/prometheus_*.deb)" >&2
  rm -rf "${work}"
}

install_tool() {
  local path
  path="$(tool_path "$1")"
  [ -x "${path}" ] && return 0
  case "$1" in
    helm)
      local x="-X helm.sh/helm/v3"
      go_install "$(dirname "${path}")" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" -ldflags \
        "-s -w ${x}/internal/version.version=${HELM_VERSION}
         ${x}/pkg/chartutil.k8sVersionMajor=${HELM_KUBE_MAJOR}
         ${x}/pkg/chartutil.k8sVersionMinor=${HELM_KUBE_MINOR}
         ${x}/pkg/lint/rules.k8sVersionMajor=${HELM_KUBE_MAJOR}
         ${x}/pkg/lint/rules.k8sVersionMinor=${HELM_KUBE_MINOR}" ;;
    ghz) go_install "$(dirname "${path}")" "github.com/bojand/ghz/cmd/ghz@${GHZ_VERSION}" ;;
    promtool)
      if ! { command -v apt-get > /dev/null && promtool_from_debian "$(dirname "${path}")"; }; then
        go_install "$(dirname "${path}")" \
          "github.com/prometheus/prometheus/cmd/promtool@${PROMTOOL_VERSION}"
      fi ;;
  esac
}

if [ "${1:-}" = "--path" ]; then
  [ $# -eq 2 ] || { echo "usage: install-tools.sh --path TOOL" >&2; exit 2; }
  path="$(tool_path "$2")"
  if [ ! -x "${path}" ]; then
    echo "install-tools.sh: $2 is not installed (run scripts/install-tools.sh)" >&2
    exit 1
  fi
  echo "${path}"
  exit 0
fi
[ $# -gt 0 ] || set -- helm ghz promtool
for tool in "$@"; do install_tool "${tool}"; done
