#!/usr/bin/env bash
# Installs the pinned command-line tools that the deployment and load tests use, into
# .cache/tools/ (gitignored; no root needed):
#   helm      HELM_VERSION, `go install helm.sh/helm/v3/cmd/helm@HELM_VERSION` with the -X
#             link flags of helm's release build (version, default Kubernetes version)
#   ghz       GHZ_VERSION,  `go install github.com/bojand/ghz/cmd/ghz@GHZ_VERSION`
#   promtool  the one on PATH if any; else taken out of Debian's `prometheus` package
#             (`apt-get download`, nothing is installed system-wide); without apt,
#             `go install github.com/prometheus/prometheus/cmd/promtool@PROMTOOL_VERSION`
#   python    a virtual environment of `python3` (Debian's python3-venv) holding the pinned,
#             hash-checked tests/python/requirements.txt (grpcio, grpcio-tools, protobuf, openai,
#             selenium): what the Python end-to-end tests run. It is made again when that file
#             changes (a copy of it inside the environment marks a finished installation).
#
# Usage: scripts/install-tools.sh [TOOL...]    install what is missing (default: all four)
#        scripts/install-tools.sh --path TOOL  print the tool's path; exit 1 when it is missing
#
# Go (1.24 or later, what helm v3.19 needs): `go` on PATH, else /usr/local/go/bin/go, else Go
# GO_TOOLCHAIN's toolchain fetched once from the Go module proxy (GOPROXY, the same mechanism as
# `go`'s own toolchain switching) into ${TLCM_CACHE_DIR:-~/.cache/tlcm-serve}: a fresh Debian or
# Ubuntu has no Go that new. Go's own module and build caches are used (GOMODCACHE, GOCACHE:
# outside the source tree); where Go has none (no HOME), they go to .cache/go/. `go install`
# stamps no version into the binaries, so the folder names carry it.
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
GO_TOOLCHAIN=1.24.13        # fetched only where no Go >= 1.24 is installed
tools="${repo}/.cache/tools"

# tool_path TOOL: where TOOL is (or goes).
tool_path() {
  case "$1" in
    helm) echo "${tools}/helm-${HELM_VERSION}/helm" ;;
    ghz) echo "${tools}/ghz-${GHZ_VERSION}/ghz" ;;
    promtool) command -v promtool || echo "${tools}/promtool/promtool" ;;
    python) echo "${tools}/python-venv/bin/python" ;;
    *) echo "install-tools.sh: unknown tool '$1' (helm, ghz, promtool, python)" >&2; return 2 ;;
  esac
}

# go_at_least_1_24 GO: whether the go binary GO runs and is 1.24 or later.
go_at_least_1_24() {
  local version
  version="$("$1" env GOVERSION 2> /dev/null)" || return 1
  version="${version#go}"
  local major="${version%%[!0-9]*}" minor="${version#*.}"
  minor="${minor%%[!0-9]*}"
  [ -n "${major}" ] && [ -n "${minor}" ] || return 1
  [ "${major}" -gt 1 ] || [ "${minor}" -ge 24 ]
}

# find_go: prints a Go >= 1.24, fetching GO_TOOLCHAIN from the module proxy when none is installed.
find_go() {
  local candidate
  for candidate in "$(command -v go || true)" /usr/local/go/bin/go; do
    if [ -n "${candidate}" ] && go_at_least_1_24 "${candidate}"; then echo "${candidate}"; return; fi
  done
  local root="${TLCM_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-${repo}}/.cache}/tlcm-serve}/go${GO_TOOLCHAIN}"
  if [ ! -x "${root}/bin/go" ]; then
    local arch proxy
    arch="$(uname -m)"; case "${arch}" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
    proxy="$(printf '%s' "${GOPROXY:-https://proxy.golang.org}" | tr ',|' '\n\n' | grep -m1 '^http' || true)"
    if [ -z "${proxy}" ]; then
      echo "install-tools.sh: no Go >= 1.24 here and GOPROXY names no proxy to fetch one from" >&2
      return 1
    fi
    local module="golang.org/toolchain@v0.0.1-go${GO_TOOLCHAIN}.linux-${arch}"
    echo "install-tools.sh: no Go >= 1.24 here; fetching ${module} from ${proxy}" >&2
    rm -rf "${root}.tmp" && mkdir -p "${root}.tmp"
    python3 - "${proxy}/golang.org/toolchain/@v/v0.0.1-go${GO_TOOLCHAIN}.linux-${arch}.zip" \
        "${module}/" "${root}.tmp" <<'PY' || { echo "install-tools.sh: fetching ${module} failed" >&2; return 1; }
import io, os, sys, urllib.request, zipfile
url, prefix, dest = sys.argv[1:]
with urllib.request.urlopen(url) as response:
    archive = zipfile.ZipFile(io.BytesIO(response.read()))
for member in archive.infolist():
    if member.filename.startswith(prefix) and not member.is_dir():
        path = os.path.join(dest, member.filename[len(prefix):])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with archive.open(member) as src, open(path, "wb") as out:
            out.write(src.read())
PY
    # Module zips keep no file modes: the toolchain's programs are bin/* and pkg/tool/*/*.
    chmod +x "${root}.tmp"/bin/* "${root}.tmp"/pkg/tool/*/* || return 1
    go_at_least_1_24 "${root}.tmp/bin/go" || { echo "install-tools.sh: ${module} does not run" >&2; return 1; }
    rm -rf "${root}" && mv "${root}.tmp" "${root}"
  fi
  echo "${root}/bin/go"
}

# go_install DIR MODULE@VERSION [GO FLAGS...]: builds the module's command into DIR.
go_install() {
  local go
  go="$(find_go)" || exit 1
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

python_requirements="${repo}/tests/python/requirements.txt"

# python_venv_current: whether the environment holds exactly the current requirements.
python_venv_current() {
  cmp -s "${python_requirements}" "${tools}/python-venv/requirements.txt"
}

# python_venv DIR: makes the virtual environment DIR from the pinned requirements, wheels only.
python_venv() {
  echo "install-tools.sh: python3 -m venv $1 (tests/python/requirements.txt)" >&2
  rm -rf "$1"
  python3 -m venv "$1" || { echo "install-tools.sh: python3 -m venv failed (python3-venv)" >&2; return 1; }
  "$1/bin/python" -m pip install -q --disable-pip-version-check --require-hashes \
    --only-binary :all: -r "${python_requirements}"
  cp "${python_requirements}" "$1/requirements.txt"
}

install_tool() {
  local path
  path="$(tool_path "$1")"
  if [ "$1" = python ]; then
    python_venv_current || python_venv "$(dirname "$(dirname "${path}")")"
    return
  fi
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
  if [ ! -x "${path}" ] || { [ "$2" = python ] && ! python_venv_current; }; then
    echo "install-tools.sh: $2 is not installed (run scripts/install-tools.sh)" >&2
    exit 1
  fi
  echo "${path}"
  exit 0
fi
[ $# -gt 0 ] || set -- helm ghz promtool python
for tool in "$@"; do install_tool "${tool}"; done
