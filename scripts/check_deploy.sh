#!/usr/bin/env bash
# Checks the deployment files: the Helm chart (helm lint + helm template on the ci/ values and the
# per-model examples; scripts/check_chart.py's template tests of each deployment rule: weights,
# rollouts, probes, sizing, the balancing proxy, KEDA), the server configurations the chart and
# scripts/fetch_models.sh write (parsed by protoc against proto/tlcm/v1/server_config.proto), the
# Prometheus rules (promtool check rules + promtool test rules), the Grafana dashboard (JSON, its
# PromQL through promtool) and that every tlcm_* metric they use is registered in
# server/metrics.cc; scripts/fetch_models.sh with a stand-in download command (pins, checksums).
#
# Usage: scripts/check_deploy.sh [--no-install]
#   Missing tools are installed by scripts/install-tools.sh (helm pinned, built with the Go
#   toolchain; promtool from Debian's `prometheus` package); --no-install fails instead (the ctest
#   test `deploy_checks` runs it so, after scripts/test.sh has installed the tools).
# Needs: bash, python3 (standard library only), protoc (scripts/install-deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

install=1
[ "${1:-}" = "--no-install" ] && install=0

chart=deploy/helm/tlcm-serve
rules=deploy/prometheus/tlcm-serve-rules.yaml
dashboard=deploy/grafana/tlcm-serve-dashboard.json
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
step() { echo; echo "== $*"; }

# ---------------------------------------------------------------- tools
if [ "$install" = 1 ]; then scripts/install-tools.sh helm promtool; fi
helm_bin="$(scripts/install-tools.sh --path helm)"
promtool_bin="$(scripts/install-tools.sh --path promtool)"
echo "helm: $("$helm_bin" version --short)   promtool: $("$promtool_bin" --version 2>&1 | head -1)"

# check_config NAME < textproto: parse it as tlcm.v1.ServerConfig.
check_config() {
  local text
  text="$(cat)"
  if ! grep -q "^models {" <<< "$text" \
     || ! protoc -I . --encode=tlcm.v1.ServerConfig proto/tlcm/v1/server_config.proto \
          <<< "$text" > /dev/null; then
    echo "check_deploy.sh: $1: not a valid tlcm.v1.ServerConfig" >&2; exit 1
  fi
  echo "$1: valid tlcm.v1.ServerConfig"
}

# ---------------------------------------------------------------- chart
link="$chart/files/tlcm-serve-rules.yaml"
[ -f "$link" ] || { echo "check_deploy.sh: $link does not resolve" >&2; exit 1; }
value_sets=("$chart/ci/values-default.yaml" "$chart/examples/values-sdxl-h100.yaml"
            "$chart/examples/values-flux-h100.yaml" "$chart/ci/values-tls-auth-fetch.yaml"
            "$chart/ci/values-proxy-keda.yaml")
# The download Job needs a lock; the ci/ one has the format, not real pins.
lock=(--set-file "modelFetch.lock=$chart/ci/models-test.lock")
for values in "${value_sets[@]}"; do
  name="$(basename "$values" .yaml)"
  step "helm lint / template: $values"
  "$helm_bin" lint --strict "$chart" -f "$values" "${lock[@]}"
  "$helm_bin" template tlcm "$chart" -f "$values" "${lock[@]}" > "$work/$name.yaml"
  echo "rendered $(grep -c '^kind:' "$work/$name.yaml") objects"
  # The server configuration of the ConfigMap.
  "$helm_bin" template tlcm "$chart" -f "$values" "${lock[@]}" --show-only templates/configmap.yaml \
    | python3 -c '
import sys, re
text = sys.stdin.read()
m = re.search(r"^  server\.textproto: \|-?\n((?:    .*\n|\n)*)", text, re.M)
if not m or "models {" not in m.group(1): sys.exit("no server.textproto with models in the ConfigMap")
sys.stdout.write("".join(l[4:] + "\n" for l in m.group(1).splitlines()))' \
    | check_config "ConfigMap server.textproto ($name)"
done
step "template tests (scripts/check_chart.py)"
python3 scripts/check_chart.py "$helm_bin" "$chart"

# ---------------------------------------------------------------- fetch script
step "scripts/fetch_models.sh (download command stubbed)"
bash -n scripts/fetch_models.sh
HF_TOKEN=unused HF_CLI=true scripts/fetch_models.sh --dest "$work/models" --models sdxl,flux \
    --devices cuda:0,cuda:1 2> /dev/null
check_config "fetch_models.sh sdxl,flux" < "$work/models/server.textproto"
HF_CLI=true scripts/fetch_models.sh --dest "$work/models2" --no-vae-fix --path-prefix /models \
    --config - 2> /dev/null | check_config "fetch_models.sh sdxl --no-vae-fix"

step "scripts/fetch_models.sh --lock: pinned commits, checksums, skips, a changed pin"
# A stand-in download command: writes a file whose bytes name the repository and commit, and logs
# its arguments.
cat > "$work/fake-hf" <<'SH'
#!/usr/bin/env bash
repo="$2"; shift 2; rev=unpinned
while [ $# -gt 0 ]; do
  case "$1" in --revision) rev="$2"; shift 2 ;; --local-dir) dir="$2"; shift 2 ;; *) shift ;; esac
done
mkdir -p "$dir/unet"
echo "$repo@$rev" > "$dir/unet/weights.safetensors"
echo "$repo $rev" >> "$FAKE_LOG"
SH
chmod +x "$work/fake-hf"
fetch_locked() {
  FAKE_LOG="$work/fetch.log" HF_CLI="$work/fake-hf" scripts/fetch_models.sh --dest "$work/pinned" \
      --no-vae-fix --config - --lock "$work/models.lock" "$@" > /dev/null 2> "$work/fetch.err"
}
expect() {  # expect WHAT CONDITION...: fails the check with WHAT unless CONDITION holds
  local what="$1"; shift
  "$@" || { echo "check_deploy.sh: fetch_models.sh: $what" >&2; cat "$work/fetch.err" >&2; exit 1; }
}
printf 'revision sdxl-base %s\nrevision tlcm-sdxl-lora %s\n' "$(printf 'a%.0s' {1..40})" \
    "$(printf 'b%.0s' {1..40})" > "$work/models.lock"
expect "a lock without checksums was accepted" eval '! fetch_locked'
expect "no checksums were recorded" fetch_locked --record-checksums
expect "the pinned commit was not asked for" grep -q "stable-diffusion-xl-base-1.0 $(printf 'a%.0s' {1..40})" "$work/fetch.log"
expect "the lock lacks the files' checksums" test "$(grep -c '^[0-9a-f]\{64\}  ' "$work/models.lock")" = 2
: > "$work/fetch.log"
expect "a complete, matching volume failed" fetch_locked
expect "complete folders were downloaded again" test ! -s "$work/fetch.log"
sed -i "s/^revision sdxl-base a/revision sdxl-base c/" "$work/models.lock"
expect "a changed commit with the old checksums passed" eval '! fetch_locked'
expect "the changed pin was not downloaded" grep -q "xl-base-1.0 c" "$work/fetch.log"
expect "the mismatch was not reported" grep -q "does not match the checksums" "$work/fetch.err"
echo "pinned downloads, checksum failures and skips behave"

# ---------------------------------------------------------------- image scripts
step "docker/ scripts parse (the images themselves are built by hand: docker/README.md)"
bash -n docker/check-image.sh
bash -n docker/collect-runtime-libs.sh
grep -q "require-hashes" docker/Dockerfile.fetch \
  || { echo "check_deploy.sh: docker/Dockerfile.fetch installs unpinned packages" >&2; exit 1; }
echo ok

# ---------------------------------------------------------------- Prometheus
step "promtool: $rules"
"$promtool_bin" check rules "$rules"
"$promtool_bin" test rules deploy/prometheus/tlcm-serve-rules.test.yaml

step "dashboard: $dashboard"
# Every panel query becomes a recording rule so that promtool parses its PromQL; Grafana's
# variables are replaced by plain values first.
python3 - "$dashboard" > "$work/dashboard-rules.yaml" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
print("groups:\n  - name: dashboard\n    rules:")
n = 0
def panels(items):
    for p in items:
        yield p
        yield from panels(p.get("panels", []))
for p in panels(dash["panels"]):
    for t in p.get("targets", []):
        expr = t["expr"].replace("$__rate_interval", "5m")
        for var in ("$namespace", "$model", "$pod"):
            expr = expr.replace(var, ".*")
        n += 1
        print(f"      - record: dashboard:panel{p['id']}:{t['refId']}")
        print(f"        expr: {json.dumps(expr)}")
if n == 0:
    sys.exit("no queries in the dashboard")
PY
"$promtool_bin" check rules "$work/dashboard-rules.yaml"

step "metric names used by the rules, the dashboard and the HPA exist in server/metrics.cc"
python3 - "$rules" "$dashboard" deploy/prometheus/prometheus-adapter-values.yaml \
    "$chart/values.yaml" <<'PY'
import re, sys
registered = set(re.findall(r'\.Name\("(tlcm_[a-z_]+)"\)', open("server/metrics.cc").read()))
registered |= set(re.findall(r'HistogramFamily\(\*registry_, "(tlcm_[a-z_]+)"', open("server/metrics.cc").read()))
if not registered:
    sys.exit("no metric families found in server/metrics.cc")
bad = []
for path in sys.argv[1:]:
    for name in sorted(set(re.findall(r"(?<![:\w])tlcm_[a-z_]+", open(path).read()))):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in registered and base not in registered:
            bad.append(f"{path}: {name}")
if bad:
    sys.exit("unknown tlcm_* metrics:\n  " + "\n  ".join(bad))
print(f"{len(registered)} registered families; every tlcm_* name in {len(sys.argv) - 1} files is one of them")
PY

echo
echo "check_deploy.sh: all checks passed"
