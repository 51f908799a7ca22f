#!/usr/bin/env bash
# End-to-end tests of the HTTP front door against the fake-pipeline server (no LibTorch, no
# model files): the official `openai` Python package, then HTTP load and abuse.
#
#   scripts/http_test.sh [--build DIR] [--python PYTHON] [--openai | --load] [--total N]
#                        [--concurrency C]
#
# --openai runs tests/server/http_openai_test.py with PYTHON (it needs the `openai` package;
# default $TLCM_TEST_PYTHON, else the test environment `scripts/install-tools.sh python` makes,
# else python3); --load runs
# tests/server/http_load_test.py (standard library only). Both by default. Starts
# tlcm-fake-server on free loopback ports (HTTP I/O timeout 2 s), waits for /readyz, runs the
# test(s), then stops the server with SIGTERM and checks that it drained and exited 0.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${repo}/build"
python="${TLCM_TEST_PYTHON:-}"
run_openai=1
run_load=1
total=300
concurrency=16
io_timeout=2

while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --openai) run_load=0; shift ;;
    --load) run_openai=0; shift ;;
    --total) total="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "${python}" ]; then
  # The pinned test environment of scripts/install-tools.sh (with `openai`), else python3.
  python="$("${repo}/scripts/install-tools.sh" --path python 2>/dev/null || echo python3)"
fi

server="${build}/tests/server/tlcm-fake-server"
[ -x "${server}" ] || { echo "missing ${server}: build it first (see --build)" >&2; exit 1; }
log="$(mktemp -t tlcm-http-test.XXXXXX.log)"
"${server}" --port 0 --metrics_port -1 --http_port 0 --http_io_timeout_seconds "${io_timeout}" \
  --step_ms 2 --max_queue_size 1000 2>"${log}" &
server_pid=$!
trap 'kill -TERM "${server_pid}" 2>/dev/null || true; rm -f "${log}"' EXIT

port=""
for _ in $(seq 1 100); do
  kill -0 "${server_pid}" 2>/dev/null || { echo "the server exited:" >&2; cat "${log}" >&2; exit 1; }
  port="$(sed -nE 's/.*HTTP on [^ ]*:([0-9]+),.*/\1/p' "${log}" | head -1)"
  if [ -n "${port}" ] && "${python}" - "${port}" <<'PY' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz", timeout=2)
PY
  sleep 0.2
done
[ -n "${port}" ] || { echo "no HTTP port in the server's log:" >&2; cat "${log}" >&2; exit 1; }

status=0
if [ "${run_openai}" = 1 ]; then
  "${python}" "${repo}/tests/server/http_openai_test.py" --port "${port}" || status=1
fi
if [ "${run_load}" = 1 ]; then
  "${python}" "${repo}/tests/server/http_load_test.py" --port "${port}" --total "${total}" \
    --concurrency "${concurrency}" --io-timeout "${io_timeout}" || status=1
fi

trap 'rm -f "${log}"' EXIT
kill -TERM "${server_pid}"
if wait "${server_pid}"; then
  echo "server drained and exited 0"
else
  echo "FAILED: the server exited with $? after SIGTERM:" >&2; tail -5 "${log}" >&2
  status=1
fi
exit "${status}"
