#!/usr/bin/env bash
# Checks the deployment files: the Helm chart (helm lint + helm template on the default values,
# the GPU/autoscaling example and the ci/ values), the server configurations the chart and
# scripts/fetch_models.sh write (parsed by protoc against proto/tlcm/v1/server_config.proto), the
# Prometheus rules (promtool check rules + promtool test rules), the Grafana dashboard (JSON, its
# PromQL through promtool) and that every tlcm_* metric they use is registered in
# server/metrics.cc.
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
for link in "$chart/files/fetch_models.sh" "$chart/files/tlcm-serve-rules.yaml"; do
  [ -f "$link" ] || { echo "check_deploy.sh: $link does not resolve" >&2; exit 1; }
done
value_sets=("$chart/ci/values-default.yaml" "$chart/examples/values-gpu-autoscaling.yaml"
            "$chart/ci/values-tls-auth-fetch.yaml")
for values in "${value_sets[@]}"; do
  name="$(basename "$values" .yaml)"
  step "helm lint / template: $values"
  "$helm_bin" lint --strict "$chart" -f "$values"
  "$helm_bin" template tlcm "$chart" -f "$values" > "$work/$name.yaml"
  echo "rendered $(grep -c '^kind:' "$work/$name.yaml") objects"
  # The server configuration of the ConfigMap.
  "$helm_bin" template tlcm "$chart" -f "$values" --show-only templates/configmap.yaml \
    | python3 -c '
import sys, re
text = sys.stdin.read()
m = re.search(r"^  server\.textproto: \|-?\n((?:    .*\n|\n)*)", text, re.M)
if not m or "models {" not in m.group(1): sys.exit("no server.textproto with models in the ConfigMap")
sys.stdout.write("".join(l[4:] + "\n" for l in m.group(1).splitlines()))' \
    | check_config "ConfigMap server.textproto ($name)"
done
step "the chart refuses a liveness window shorter than the drain grace"
if "$helm_bin" template tlcm "$chart" --set probes.liveness.failureThreshold=2 > /dev/null 2>&1; then
  echo "check_deploy.sh: expected helm template to fail" >&2; exit 1
fi
echo "refused, as expected"

# ---------------------------------------------------------------- fetch script
step "scripts/fetch_models.sh (download command stubbed)"
bash -n scripts/fetch_models.sh
HF_TOKEN=unused HF_CLI=true scripts/fetch_models.sh --dest "$work/models" --models sdxl,flux \
    --devices cuda:0,cuda:1 2> /dev/null
check_config "fetch_models.sh sdxl,flux" < "$work/models/server.textproto"
HF_CLI=true scripts/fetch_models.sh --dest "$work/models2" --no-vae-fix --path-prefix /models \
    --config - 2> /dev/null | check_config "fetch_models.sh sdxl --no-vae-fix"

# ---------------------------------------------------------------- image scripts
step "docker/ scripts parse (the images themselves are built by hand: docker/README.md)"
bash -n docker/check-image.sh
bash -n docker/collect-runtime-libs.sh
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
