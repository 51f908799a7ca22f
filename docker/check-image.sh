#!/usr/bin/env bash
# Checks a built tlcm-serve image the way the Helm chart runs it: as uid 10001 with a read-only
# root filesystem and /tmp as the only writable place, no weights inside, demo models served.
#
# Usage: docker/check-image.sh IMAGE [--cuda]
#   --cuda   also require the CUDA build of LibTorch inside (libtorch_cuda linked into
#            tlcm-server). On a machine without a GPU the server still runs, on the CPU.
# Needs: docker. Uses the host network (works where dockerd has no bridge) on ports
# CHECK_PORT (default 50071) and CHECK_METRICS_PORT (default 9471).
# Exit status 0 when every check passed; each check prints one "ok:" or "FAIL:" line.
set -euo pipefail
image="${1:?usage: docker/check-image.sh IMAGE [--cuda]}"
cuda="${2:-}"
port="${CHECK_PORT:-50071}"
metrics_port="${CHECK_METRICS_PORT:-9471}"
name="tlcm-check-$$"
out="$(mktemp -d)"
failures=0

ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
cleanup() { docker rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$out"; }
trap cleanup EXIT
# One-off commands in the image, as the image's user, with its read-only root.
in_image() { docker run --rm --network host --read-only --tmpfs /tmp --entrypoint "$1" "$image" "${@:2}"; }

# 1. What is inside, without starting the server.
[[ "$(docker image inspect -f '{{.Config.User}}' "$image")" == "10001:10001" ]] &&
  ok "runs as 10001:10001" || fail "image user is not 10001:10001"
[[ "$(docker image inspect -f '{{json .Config.Entrypoint}}' "$image")" == '["tlcm-server"]' ]] &&
  ok "entrypoint tlcm-server" || fail "entrypoint is not [\"tlcm-server\"]"
missing="$(in_image /bin/sh -c 'for b in tlcm-server tlcm-client tlcm-generate; do
  if [ -x "/opt/tlcm/bin/$b" ]; then ldd "/opt/tlcm/bin/$b" | grep "not found"; else echo "$b"; fi
  done' || true)"
[[ -z "$missing" ]] && ok "the three binaries are there and every library resolves" ||
  fail "missing binaries or libraries: $missing"
weights="$(in_image /bin/sh -c 'find / -xdev -size +100M \( -name "*.safetensors" -o -name "*.bin" \) 2>/dev/null' || true)"
[[ -z "$weights" ]] && ok "no model weights over 100 MB in the image" || fail "weights inside: $weights"
if [[ "$cuda" == "--cuda" ]]; then
  in_image /bin/sh -c 'ldd /opt/tlcm/bin/tlcm-server | grep -q libtorch_cuda.so' &&
    ok "tlcm-server links libtorch_cuda" || fail "tlcm-server does not link libtorch_cuda"
  in_image /bin/sh -c 'ls /opt/tlcm/lib/libcudnn_ops.so.* /opt/tlcm/lib/libcublasLt.so.* >/dev/null' &&
    ok "dlopen'ed cuDNN / cuBLAS libraries present" || fail "cuDNN / cuBLAS sub-libraries missing"
fi

# 2. The server on the demo models, as Kubernetes would start it.
if ! docker run -d --name "$name" --network host --read-only --tmpfs /tmp "$image" \
    --port "$port" --metrics_port "$metrics_port" >/dev/null; then
  fail "the container did not start"; echo "check-image: $failures failure(s)"; exit 1
fi
serving=""
for _ in $(seq 1 120); do
  if docker exec "$name" tlcm-client health --target "localhost:$port" >/dev/null 2>&1; then
    serving=yes; break
  fi
  [[ "$(docker inspect -f '{{.State.Running}}' "$name")" == "true" ]] || break
  sleep 1
done
[[ -n "$serving" ]] && ok "grpc.health.v1 reports SERVING" || { fail "server never SERVING"; docker logs "$name" 2>&1 | tail -20; exit 1; }
[[ "$(docker exec "$name" id -u)" == "10001" ]] && ok "server process uid 10001" || fail "server uid is not 10001"
models="$(docker exec "$name" tlcm-client models --target "localhost:$port")"
grep -q sdxl-demo <<<"$models" && grep -q flux-demo <<<"$models" &&
  ok "serves sdxl-demo and flux-demo" || fail "demo models missing: $models"

# 3. One generation per family through gRPC; the PNG is read back out of the container's /tmp.
for model in sdxl-demo flux-demo; do
  docker exec "$name" tlcm-client generate --target "localhost:$port" --model "$model" \
    --prompt "a red bicycle" --steps 2 --seed 7 --out_dir "/tmp/$model" >/dev/null
  docker exec "$name" /bin/sh -c "cat /tmp/$model/*.png" > "$out/$model.png"
  signature="$(head -c 8 "$out/$model.png" | od -An -tx1 | tr -d ' \n')"
  [[ "$signature" == "89504e470d0a1a0a" ]] && ok "$model: generated a PNG ($(wc -c <"$out/$model.png") bytes)" ||
    fail "$model: no PNG came back"
done

# 4. Metrics for Prometheus.
metrics="$(in_image /bin/bash -c "exec 3<>/dev/tcp/127.0.0.1/$metrics_port &&
  printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3")"
grep -q '^tlcm_requests_total{' <<<"$metrics" && ok "/metrics exposes tlcm_requests_total" ||
  fail "/metrics lacks tlcm_requests_total"

# 5. Graceful stop: SIGTERM drains and exits 0 well inside Docker's 10 s default.
docker stop "$name" >/dev/null
code="$(docker inspect -f '{{.State.ExitCode}}' "$name")"
[[ "$code" == "0" ]] && ok "SIGTERM: exit status 0" || fail "SIGTERM: exit status $code"

echo "check-image: $failures failure(s)"
[[ "$failures" -eq 0 ]]
