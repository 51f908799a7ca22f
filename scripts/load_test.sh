#!/usr/bin/env bash
# Load test of tlcm-server with ghz, through server reflection (no .proto file needed).
#
#   scripts/load_test.sh [--build DIR] [--fake | --config FILE] [--model NAME] [--total N]
#                        [--concurrency C] [--connections K] [--steps S] [--size WxH]
#                        [--no-metrics] [--no-install]
#
# 1. Installs ghz at a pinned version with the Go toolchain into .cache/tools/ (once, through
#    scripts/install-tools.sh; --no-install fails instead when it is missing).
# 2. Starts a local server on free loopback ports: tlcm-server on the built-in demo models (the
#    default), on --config FILE, or with --fake the fake-pipeline server (no LibTorch, no model
#    files: measures the serving layer alone). Waits until health is SERVING. --no-metrics starts
#    it with --metrics_port -1 (no Prometheus endpoint).
# 3. Runs `ghz` (the command line is printed; docs/load-testing.md has it for users), prints its
#    summary, checks /metrics with promtool when it is installed, then stops the server with
#    SIGTERM (a drain) and checks that it exited 0.
# Exits non-zero when any call did not end OK, or the server failed to start or stop cleanly.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${repo}/build"
mode="demo"
config=""
model=""
total=300
concurrency=8
connections=2
steps=4
size=""
metrics_port=0
install=1

while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --fake) mode="fake"; shift ;;
    --config) mode="config"; config="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --total) total="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --no-metrics) metrics_port=-1; shift ;;
    --no-install) install=0; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

# --- ghz ---------------------------------------------------------------------------------------
if [ "${install}" = 1 ]; then "${repo}/scripts/install-tools.sh" ghz; fi
ghz="$("${repo}/scripts/install-tools.sh" --path ghz)"

# --- server ------------------------------------------------------------------------------------
client="${build}/client/tlcm-client"
case "${mode}" in
  fake)
    server=("${build}/tests/server/tlcm-fake-server" --port 0 --metrics_port "${metrics_port}")
    model="${model:-fake}"
    size="${size:-64x64}" ;;
  demo)
    server=("${build}/server/tlcm-server" --listen_address 127.0.0.1 --port 0
            --metrics_port "${metrics_port}")
    model="${model:-sdxl-demo}" ;;
  config)
    server=("${build}/server/tlcm-server" --config "${config}" --listen_address 127.0.0.1
            --port 0 --metrics_port "${metrics_port}")
    [ -n "${model}" ] || { echo "--config needs --model" >&2; exit 2; } ;;
esac
for binary in "${server[0]}" "${client}"; do
  [ -x "${binary}" ] || { echo "missing ${binary}: build it first (see --build)" >&2; exit 1; }
done

log="$(mktemp -t tlcm-load-test.XXXXXX.log)"
"${server[@]}" 2>"${log}" &
server_pid=$!
stop_server() {
  if kill -0 "${server_pid}" 2>/dev/null; then kill -TERM "${server_pid}"; fi
}
trap stop_server EXIT

port=""
metrics_http_port=""
for _ in $(seq 1 600); do
  if ! kill -0 "${server_pid}" 2>/dev/null; then
    echo "the server exited during start-up:" >&2; cat "${log}" >&2; exit 1
  fi
  line="$(grep -m1 '"event":"listening"' "${log}" || true)"
  if [ -n "${line}" ]; then
    port="$(sed -E 's/.*\(port ([0-9]+).*/\1/' <<<"${line}")"
    metrics_http_port="$(sed -nE 's/.*metrics on [^ ]*:([0-9]+)\/metrics.*/\1/p' <<<"${line}")"
    "${client}" health --target "127.0.0.1:${port}" --timeout_seconds 2 >/dev/null 2>&1 && break
  fi
  sleep 0.5
done
"${client}" health --target "127.0.0.1:${port}" --timeout_seconds 2 >/dev/null ||
  { echo "the server never became SERVING:" >&2; tail -20 "${log}" >&2; exit 1; }

# --- load --------------------------------------------------------------------------------------
data="{\"model\":\"${model}\",\"prompt\":\"a lighthouse on a cliff at dawn\",\"steps\":${steps}"
if [ -n "${size}" ]; then
  data+=",\"width\":${size%x*},\"height\":${size#*x}"
fi
data+=",\"seed\":\"{{.RequestNumber}}\"}"
# round_robin: each connection spreads its calls over every address the target resolves to
# (one here; every pod behind a headless Service's dns:/// name in a cluster).
cmd=("${ghz}" --insecure --call tlcm.v1.TlcmService/Generate -d "${data}"
     -n "${total}" -c "${concurrency}" --connections "${connections}" --timeout 120s
     --lb-strategy round_robin "dns:///127.0.0.1:${port}")
echo "+ ghz --insecure --call tlcm.v1.TlcmService/Generate -d '${data}' -n ${total}" \
     "-c ${concurrency} --connections ${connections} --timeout 120s" \
     "--lb-strategy round_robin dns:///127.0.0.1:${port}" >&2
summary="$("${cmd[@]}")"
echo "${summary}"
ok="$(sed -nE 's/^ *\[OK\] +([0-9]+) responses.*/\1/p' <<<"${summary}")"
status=0
if [ "${ok:-0}" != "${total}" ]; then
  echo "FAILED: ${ok:-0} of ${total} calls ended OK" >&2
  status=1
fi

# --- metrics -----------------------------------------------------------------------------------
promtool="$("${repo}/scripts/install-tools.sh" --path promtool 2>/dev/null || true)"
if [ -n "${metrics_http_port}" ] && [ -n "${promtool}" ] && command -v curl >/dev/null; then
  if curl -sf "http://127.0.0.1:${metrics_http_port}/metrics" | "${promtool}" check metrics; then
    echo "promtool check metrics: clean"
  else
    echo "FAILED: promtool check metrics" >&2
    status=1
  fi
fi

# --- drain -------------------------------------------------------------------------------------
trap - EXIT
kill -TERM "${server_pid}"
if wait "${server_pid}"; then
  echo "server drained and exited 0"
else
  echo "FAILED: the server exited with $? after SIGTERM:" >&2; tail -5 "${log}" >&2
  status=1
fi
rm -f "${log}"
exit "${status}"
