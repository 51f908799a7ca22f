#!/usr/bin/env python3
"""Template tests of the Helm chart: renders one case per deployment rule with `helm template` and
asserts on the objects (issue #22: weights, rollouts, probes, sizing; issue #18: the proxy, KEDA).

Usage: scripts/check_chart.py HELM CHART   (scripts/check_deploy.sh runs it)

Standard library only: the rendered YAML is turned into JSON by helm itself (a throwaway chart
whose template applies fromYaml / toJson to each document), so no YAML parser is needed here.
Exits 1 naming every failed assertion.
"""
import base64
import json
import os
import re
import subprocess
import sys
import tempfile

HELM, CHART = sys.argv[1], sys.argv[2]
LOCK = os.path.join(CHART, "ci/models-test.lock")
LIVENESS = "tlcm.v1.Liveness"
failures = []
work = tempfile.mkdtemp()

# The converter chart: each document of in.yaml becomes one base64 JSON comment line.
os.makedirs(os.path.join(work, "conv/templates"))
with open(os.path.join(work, "conv/Chart.yaml"), "w") as f:
    f.write("apiVersion: v2\nname: yaml2json\nversion: 0.0.0\n")
with open(os.path.join(work, "conv/templates/json.yaml"), "w") as f:
    f.write('{{- range regexSplit "(?m)^---[ \\\\t]*$" (.Files.Get "in.yaml") -1 }}\n'
            "{{- with fromYaml . }}\n# {{ toJson . | b64enc }}\n{{- end }}\n{{- end }}\n")


def helm_template(*args):
    """(returncode, stdout, stderr) of `helm template tlcm CHART ARGS`."""
    run = subprocess.run([HELM, "template", "tlcm", CHART, *args], capture_output=True, text=True)
    return run.returncode, run.stdout, run.stderr


def render(name, *args):
    """The objects of one case, as dicts; records a failure when the chart refuses it."""
    code, out, err = helm_template(*args)
    if code != 0:
        failures.append(f"{name}: helm template failed: {err.strip()}")
        return []
    return yaml_documents(name, out)


def yaml_documents(name, text):
    """The documents of a YAML text, as dicts (through the converter chart)."""
    with open(os.path.join(work, "conv/in.yaml"), "w") as f:
        f.write(text)
    conv = subprocess.run([HELM, "template", "c", os.path.join(work, "conv")],
                          capture_output=True, text=True, check=True).stdout
    objects = [json.loads(base64.b64decode(line[2:]))
               for line in conv.splitlines() if line.startswith("# ") and not line.startswith("# Source")]
    for o in objects:
        if "Error" in o:
            failures.append(f"{name}: a rendered document is not YAML: {o['Error']}")
    return objects


def refuses(name, message, *args):
    """The chart must fail to render, saying `message`."""
    code, _, err = helm_template(*args)
    check(name, code != 0 and message in err, f"expected a failure saying {message!r}, got: "
          + (err.strip() or "success"))


def check(name, ok, what):
    if not ok:
        failures.append(f"{name}: {what}")


def one(objects, kind, name=None):
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    return found[0] if len(found) == 1 else None


def kinds(objects):
    return sorted(o["kind"] for o in objects)


def pod_spec(objects):
    return one(objects, "Deployment", "tlcm-tlcm-serve")["spec"]["template"]["spec"]


def server(objects):
    return next(c for c in pod_spec(objects)["containers"] if c["name"] == "server")


def config_text(objects):
    return one(objects, "ConfigMap", "tlcm-tlcm-serve-config")["data"]["server.textproto"]


def gib(quantity):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Gi|Mi)", str(quantity))
    return float(m.group(1)) / (1024 if m.group(2) == "Mi" else 1)


fetch = ["--set-file", f"modelFetch.lock={LOCK}"]

# ---------------------------------------------------------------- weights
refuses("defaults alone (no weights)", "no model weights")
refuses("fetch without a lock", "modelFetch.lock", "--set", "modelFetch.enabled=true")
refuses("a node-local volume with fetch", "modelFetch fills a PersistentVolumeClaim",
        "--set", "modelStorage.volume.hostPath.path=/srv/models", "--set", "modelFetch.enabled=true",
        *fetch)

name = "existing claim"
objs = render(name, "-f", f"{CHART}/ci/values-default.yaml")
if objs:
    spec = pod_spec(objs)
    check(name, "Job" not in kinds(objs) and "PersistentVolumeClaim" not in kinds(objs),
          f"expected neither a Job nor a claim, got {kinds(objs)}")
    check(name, "initContainers" not in spec, "expected no init container")
    vol = next(v for v in spec["volumes"] if v["name"] == "models")
    check(name, vol.get("persistentVolumeClaim") == {"claimName": "tlcm-models", "readOnly": True},
          f"models volume: {vol}")

name = "download Job"
objs = render(name, "-f", f"{CHART}/ci/values-tls-auth-fetch.yaml", *fetch)
if objs:
    job = one(objs, "Job")
    check(name, job is not None, f"expected one Job, got {kinds(objs)}")
    check(name, one(objs, "PersistentVolumeClaim") is not None, "expected the created claim")
    text = json.dumps(objs)
    check(name, "pip install" not in text and "pip3 install" not in text,
          "something installs packages at start")
    if job:
        jspec = job["spec"]
        check(name, jspec["parallelism"] == 1 and jspec["completions"] == 1, "not one writer")
        fetch_c = jspec["template"]["spec"]["containers"][0]
        check(name, re.search(r"@sha256:[0-9a-f]{64}$", fetch_c["image"]) is not None,
              f"download image not pinned by digest: {fetch_c['image']}")
        check(name, "--lock /etc/tlcm-fetch/models.lock" in fetch_c["args"][0], "no --lock")
        fetch_id = jspec["template"]["metadata"]["labels"]["tlcm-serve/fetch-id"]
        check(name, job["metadata"]["name"].endswith("-fetch-" + fetch_id), "Job name without its id")
        wait = pod_spec(objs).get("initContainers", [{}])[0]
        check(name, wait.get("name") == "wait-for-weights" and fetch_id in wait["args"][0],
              "the server pods do not wait for this Job's id")
        check(name, all(m.get("readOnly") for m in wait.get("volumeMounts", [])),
              "the wait container mounts the weights writable")
        lock = one(objs, "ConfigMap", "tlcm-tlcm-serve-fetch")
        check(name, lock is not None and "revision sdxl-base" in lock["data"]["models.lock"],
              "the lock is not in the fetch ConfigMap")
        # The same values give the same Job; a changed pin gives a new one.
        again = one(render(name, "-f", f"{CHART}/ci/values-tls-auth-fetch.yaml", *fetch), "Job")
        check(name, again and again["metadata"]["name"] == job["metadata"]["name"],
              "the Job name is not stable")
        other = os.path.join(work, "other.lock")
        with open(LOCK) as src, open(other, "w") as dst:
            dst.write(src.read().replace("0000000000000000000000000000000000000001", "1" * 40))
        moved = one(render(name, "-f", f"{CHART}/ci/values-tls-auth-fetch.yaml", "--set-file",
                           f"modelFetch.lock={other}"), "Job")
        check(name, moved and moved["metadata"]["name"] != job["metadata"]["name"],
              "a changed lock keeps the old Job")
    mounts = {m["name"]: m for m in server(objs)["volumeMounts"]}
    check(name, mounts["models"].get("readOnly") is True, "the server mounts the weights writable")

name = "node-local volume"
objs = render(name, "--set", "modelStorage.volume.hostPath.path=/srv/models")
if objs:
    vol = next(v for v in pod_spec(objs)["volumes"] if v["name"] == "models")
    check(name, vol == {"name": "models", "hostPath": {"path": "/srv/models"}}, f"models volume: {vol}")
    check(name, "PersistentVolumeClaim" not in kinds(objs), "a claim was created")

# ---------------------------------------------------------------- rollouts
startup_window = 10 * 180
for name, args, want in [
    ("strategy, ReadWriteOnce claim", ["-f", f"{CHART}/ci/values-default.yaml"], {"type": "Recreate"}),
    ("strategy, ReadWriteMany claim", ["-f", f"{CHART}/ci/values-default.yaml", "--set",
                                       "modelStorage.accessModes={ReadWriteMany}"],
     {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}),
    ("strategy, given", ["-f", f"{CHART}/ci/values-default.yaml", "--set",
                         "strategy.type=RollingUpdate", "--set", "strategy.rollingUpdate.maxSurge=1",
                         "--set", "strategy.rollingUpdate.maxUnavailable=0"],
     {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}),
]:
    objs = render(name, *args)
    if objs:
        dspec = one(objs, "Deployment")["spec"]
        check(name, dspec["strategy"] == want, f"strategy {dspec['strategy']}, want {want}")
        check(name, dspec["progressDeadlineSeconds"] > startup_window,
              f"progressDeadlineSeconds {dspec['progressDeadlineSeconds']} within a cold start")
refuses("progress deadline shorter than a cold start", "progressDeadlineSeconds",
        "-f", f"{CHART}/ci/values-default.yaml", "--set", "progressDeadlineSeconds=600")

# ---------------------------------------------------------------- probes
name = "plaintext probes"
objs = render(name, "-f", f"{CHART}/ci/values-default.yaml")
if objs:
    c = server(objs)
    check(name, c["livenessProbe"].get("grpc") == {"port": 50051, "service": LIVENESS},
          f"liveness {c['livenessProbe']}")
    for probe in ("startupProbe", "readinessProbe"):
        check(name, c[probe].get("grpc") == {"port": 50051}, f"{probe} {c[probe]}")
    check(name, pod_spec(objs)["terminationGracePeriodSeconds"] == 30 + 5 + 15,
          "terminationGracePeriodSeconds is not drain 30 + preStop 5 + 15")


def run_probe(script, with_ca):
    """Runs an exec probe's shell script with a stand-in tlcm-client; returns the arguments it got."""
    root = tempfile.mkdtemp(dir=work)
    os.makedirs(f"{root}/bin")
    os.makedirs(f"{root}/tls")
    with open(f"{root}/bin/tlcm-client", "w") as f:
        f.write('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    os.chmod(f"{root}/bin/tlcm-client", 0o755)
    if with_ca:
        with open(f"{root}/tls/ca.crt", "w") as f:
            f.write("CA\n")
    run = subprocess.run(["sh", "-c", script.replace("/etc/tlcm/tls/", f"{root}/tls/")],
                         capture_output=True, text=True,
                         env={"PATH": f"{root}/bin:/usr/bin:/bin"})
    return [a.replace(f"{root}/tls/", "/etc/tlcm/tls/") for a in run.stdout.splitlines()]


name = "TLS probes"
objs = render(name, "-f", f"{CHART}/ci/values-tls-auth-fetch.yaml", *fetch)
if objs:
    c = server(objs)
    for probe, service in (("livenessProbe", LIVENESS), ("readinessProbe", ""), ("startupProbe", "")):
        command = c[probe]["exec"]["command"]
        for with_ca in (True, False):
            got = run_probe(command[2], with_ca)
            check(name, got[:1] == ["health"] and f"--service={service}" in got,
                  f"{probe} asks {got}, want health of service {service!r}")
            check(name, ("--ca_cert=/etc/tlcm/tls/ca.crt" in got) == with_ca,
                  f"{probe} with{'' if with_ca else 'out'} ca.crt runs {got}")
            check(name, "--client_cert=/etc/tlcm/tls/tls.crt" in got, f"{probe}: no client certificate")
    test_pod = one(objs, "Pod")
    check(name, "if [ -s /etc/tlcm/tls/ca.crt ]" in test_pod["spec"]["containers"][0]["args"][0],
          "the helm test passes ca.crt unconditionally")
    check(name, pod_spec(objs)["terminationGracePeriodSeconds"] == 46 + 5 + 15,
          "terminationGracePeriodSeconds is not ceil(45.5) + 5 + 15")

name = "drain grace from rawConfig"
raw = 'port: 50051\nmetrics_port: 9464\ndrain_grace_seconds: 120\nmodels { name: "m" }\n'
objs = render(name, "-f", f"{CHART}/ci/values-default.yaml", "--set-string", f"rawConfig={raw}")
if objs:
    check(name, pod_spec(objs)["terminationGracePeriodSeconds"] == 120 + 5 + 15,
          f"terminationGracePeriodSeconds {pod_spec(objs)['terminationGracePeriodSeconds']}")
name = "drain grace from a flag"
objs = render(name, "-f", f"{CHART}/ci/values-default.yaml", "--set-string", f"rawConfig={raw}",
              "--set", "server.extraArgs={--drain_grace_seconds=90.5}")
if objs:
    check(name, pod_spec(objs)["terminationGracePeriodSeconds"] == 91 + 5 + 15,
          f"terminationGracePeriodSeconds {pod_spec(objs)['terminationGracePeriodSeconds']}")
refuses("rawConfig without drain_grace_seconds", "state drain_grace_seconds",
        "-f", f"{CHART}/ci/values-default.yaml", "--set-string",
        "rawConfig=port: 50051\nmodels { name: \"m\" }\n")

# ---------------------------------------------------------------- sizing
name = "defaults: threads, memory, digest, PDB, spread"
objs = render(name, "-f", f"{CHART}/ci/values-default.yaml", "--set",
              "image.digest=sha256:" + "a" * 64)
if objs:
    res = server(objs)["resources"]
    check(name, res["requests"]["memory"] == res["limits"]["memory"], f"memory {res}")
    check(name, re.search(r"^compute_threads: 4$", config_text(objs), re.M) is not None,
          "compute_threads is not the CPU request (4)")
    check(name, server(objs)["image"] == "tlcm-serve:0.1.0-cuda@sha256:" + "a" * 64,
          f"image {server(objs)['image']}")
    pdb = one(objs, "PodDisruptionBudget")
    check(name, pdb["spec"].get("unhealthyPodEvictionPolicy") == "AlwaysAllow", f"PDB {pdb['spec']}")
    spread = pod_spec(objs)["topologySpreadConstraints"][0]
    check(name, spread["labelSelector"]["matchLabels"].get("app.kubernetes.io/instance") == "tlcm",
          f"topology spread not by release: {spread}")
objs = render("CPU request in millicores", "-f", f"{CHART}/ci/values-default.yaml", "--set",
              "resources.requests.cpu=2500m")
check("CPU request in millicores", not objs or "compute_threads: 3\n" in config_text(objs) + "\n",
      "compute_threads is not 2500m rounded up")
refuses("memory request below the limit", "memory request", "-f", f"{CHART}/ci/values-default.yaml",
        "--set", "resources.requests.memory=8Gi")

# The per-model examples: one model each, fitting an 80 GB GPU by docs/deploy.md's figures
# (weights GiB, GiB per 1024 x 1024 image of a batch; ~1 GiB CUDA context; 15% headroom), memory
# request = limit >= weight files + 8 GiB, an HPA whose target is two batches per GPU.
GPU_GIB = 80e9 / 2**30
FIGURES = {"sdxl-tlcm": (6.6, 5.0, 7.3), "flux-tlcm": (31.4, 5.0, 32.5)}
for example, release in (("values-sdxl-h100.yaml", "tlcm-sdxl"), ("values-flux-h100.yaml", "tlcm-flux")):
    name = f"examples/{example}"
    objs = render(name, "-f", f"{CHART}/examples/{example}", *fetch)
    if not objs:
        continue
    models = re.findall(r'^models \{\n  (?:.*\n)*?\}', config_text(objs), re.M)
    check(name, len(models) == 1, f"{len(models)} models in one release")
    block = models[0]
    model = re.search(r'name: "([^"]+)"', block).group(1)
    batch = int(re.search(r"max_batch_size: (\d+)", block).group(1))
    pixels = int(re.search(r"max_pixels: (\d+)", block).group(1))
    weights, per_image, files = FIGURES[model]
    need = weights + batch * per_image * pixels / 2**20 + 1
    check(name, need <= 0.85 * GPU_GIB, f"{model} needs {need:.1f} GiB of an {GPU_GIB:.1f} GiB GPU")
    res = server(objs)["resources"]
    check(name, res["requests"]["memory"] == res["limits"]["memory"]
          and gib(res["limits"]["memory"]) >= files + 8, f"memory {res}")
    hpa = one(objs, "HorizontalPodAutoscaler")
    target = hpa and float(hpa["spec"]["metrics"][0]["pods"]["target"]["averageValue"])
    check(name, target == 2 * batch * res["limits"]["nvidia.com/gpu"], f"HPA target {target}")
    monitor = one(objs, "ServiceMonitor")
    relabel = monitor and monitor["spec"]["endpoints"][0].get("relabelings", [])
    check(name, any(r.get("targetLabel") == "release" for r in relabel or []),
          "the ServiceMonitor adds no release label")

# ---------------------------------------------------------------- balancing and autoscaling
def restricted(name, spec):
    """Pod Security Standard "restricted" on a pod spec, as far as the chart sets it."""
    pod = spec.get("securityContext", {})
    check(name, pod.get("runAsNonRoot") is True and pod.get("seccompProfile", {}).get("type")
          in ("RuntimeDefault", "Localhost"), f"pod securityContext {pod}")
    for c in spec["containers"] + spec.get("initContainers", []):
        sc = c.get("securityContext", {})
        check(name, sc.get("allowPrivilegeEscalation") is False
              and sc.get("capabilities", {}).get("drop") == ["ALL"]
              and not sc.get("capabilities", {}).get("add")
              and sc.get("readOnlyRootFilesystem") is True, f"{c['name']} securityContext {sc}")
    allowed = {"configMap", "secret", "emptyDir", "persistentVolumeClaim", "projected", "name"}
    for v in spec.get("volumes", []):
        check(name, set(v) <= allowed, f"volume type not allowed by 'restricted': {v}")


name = "defaults: no proxy, no ScaledObject"
objs = render(name, "-f", f"{CHART}/ci/values-default.yaml")
if objs:
    check(name, not [o for o in objs if o["metadata"].get("labels", {}).get(
        "app.kubernetes.io/component") == "proxy"], "proxy objects rendered while proxy.enabled is off")
    check(name, "ScaledObject" not in kinds(objs), "a ScaledObject while keda.enabled is off")
    restricted(name, pod_spec(objs))

PROXY = "tlcm-tlcm-serve-proxy"
HEALTH = "tlcm.v1.TlcmService"
# Every typed extension the proxy's configuration may use: its name and its message type.
ENVOY_TYPES = {
    "envoy.filters.network.http_connection_manager":
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    "envoy.filters.http.router": "envoy.extensions.filters.http.router.v3.Router",
    "envoy.retry_host_predicates.previous_hosts":
        "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate",
    "envoy.cluster.dns": "envoy.extensions.clusters.dns.v3.DnsCluster",
    "envoy.load_balancing_policies.least_request":
        "envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest",
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions":
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    "envoy.transport_sockets.tls": ("envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                                    "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"),
}
# Retry conditions under which the call never started on the pod (retrying cannot run it twice).
SAFE_RETRIES = {"connect-failure", "refused-stream", "unavailable", "resource-exhausted"}


def typed_configs(node, owner=None):
    """(extension name, "@type") of every typed_config / typed extension option in a config tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "typed_config":
                yield node.get("name"), value.get("@type", "")
            elif owner == "typed_extension_protocol_options":
                yield key, value.get("@type", "")
            yield from typed_configs(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from typed_configs(item, owner)


def envoy_config(name, objs):
    """The proxy's Envoy configuration, as a dict, with the structural checks every case shares."""
    cm = one(objs, "ConfigMap", PROXY)
    check(name, cm is not None, "no proxy ConfigMap")
    if cm is None:
        return None
    docs = yaml_documents(name, cm["data"]["envoy.yaml"])
    if len(docs) != 1:
        failures.append(f"{name}: envoy.yaml is {len(docs)} documents")
        return None
    config = docs[0]
    for ext, url in typed_configs(config):
        want = ENVOY_TYPES.get(ext)
        check(name, url.startswith("type.googleapis.com/") and want is not None
              and url.split("/", 1)[1] in (want if isinstance(want, tuple) else (want,)),
              f"extension {ext!r} with type {url!r}")
    listeners = {l["name"]: l for l in config["static_resources"]["listeners"]}
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    check(name, set(listeners) == {"grpc", "metrics"} and set(clusters) == {"tlcm", "admin"},
          f"listeners {sorted(listeners)}, clusters {sorted(clusters)}")
    admin = config["admin"]["address"]["socket_address"]
    check(name, admin["address"] == "127.0.0.1", f"the admin interface listens on {admin}")
    return config


def hcm(listener):
    return listener["filter_chains"][0]["filters"][0]["typed_config"]


name = "proxy"
digest = "sha256:" + "b" * 64
objs = render(name, "-f", f"{CHART}/ci/values-default.yaml", "--set", "proxy.enabled=true",
              "--set", f"proxy.image.digest={digest}")
config = objs and envoy_config(name, objs)
if config:
    deploy = one(objs, "Deployment", PROXY)
    spec = deploy["spec"]["template"]["spec"]
    envoy = spec["containers"][0]
    restricted(name, spec)
    check(name, re.fullmatch(r"envoyproxy/envoy:v\d+\.\d+\.\d+@" + digest, envoy["image"]) is not None,
          f"proxy image not pinned by version and digest: {envoy['image']}")
    check(name, deploy["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
          == "proxy", "proxy pods labelled as servers (the server Services would select them)")
    ports = {p["name"]: p["containerPort"] for p in envoy["ports"]}
    listeners = {l["name"]: l for l in config["static_resources"]["listeners"]}
    tlcm = next(c for c in config["static_resources"]["clusters"] if c["name"] == "tlcm")
    check(name, listeners["grpc"]["address"]["socket_address"]["port_value"] == ports["grpc"]
          and listeners["metrics"]["address"]["socket_address"]["port_value"] == ports["metrics"],
          f"listener ports differ from the container's {ports}")
    # Upstream: every ready pod through the headless Service, HTTP/2, balanced by least requests.
    headless = one(objs, "Service", "tlcm-tlcm-serve-headless")
    addr = tlcm["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    check(name, headless and headless["spec"]["clusterIP"] == "None"
          and addr["address"] == "tlcm-tlcm-serve-headless.default.svc.cluster.local"
          and addr["port_value"] == server(objs)["ports"][0]["containerPort"],
          f"upstream address {addr}")
    check(name, tlcm["cluster_type"]["name"] == "envoy.cluster.dns"
          and not tlcm["cluster_type"]["typed_config"].get("all_addresses_in_single_endpoint"),
          "upstream is not one host per DNS address")
    policy = tlcm["load_balancing_policy"]["policies"][0]["typed_extension_config"]
    check(name, policy["name"] == "envoy.load_balancing_policies.least_request", f"balancing {policy}")
    check(name, "explicit_http_config" in tlcm["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
          and "http2_protocol_options" in tlcm["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["explicit_http_config"],
          "upstream is not HTTP/2")
    hc = tlcm["health_checks"]
    check(name, len(hc) == 1 and hc[0].get("grpc_health_check", {}).get("service_name") == HEALTH,
          f"health checks {hc}")
    check(name, tlcm["outlier_detection"].get("consecutive_5xx", 0) > 0
          and 0 < tlcm["outlier_detection"].get("max_ejection_percent", 0) < 100,
          f"outlier detection {tlcm['outlier_detection']}")
    check(name, "transport_socket" not in tlcm, "TLS upstream without tls.enabled")
    # Downstream: nothing of the proxy's own cuts a long stream; retries only where safe.
    manager = hcm(listeners["grpc"])
    check(name, manager.get("stream_idle_timeout") == "0s" and manager.get("request_timeout", "0s")
          == "0s", f"stream/request timeouts {manager.get('stream_idle_timeout')} "
          f"{manager.get('request_timeout')}")
    routes = manager["route_config"]["virtual_hosts"][0]["routes"]
    check(name, len(routes) == 1 and routes[0]["match"] == {"prefix": "/"}, f"routes {routes}")
    route = routes[0]["route"]
    check(name, route["cluster"] == "tlcm" and route.get("timeout") == "0s"
          and route.get("idle_timeout", "0s") == "0s", f"route timeouts {route}")
    check(name, route.get("max_stream_duration", {}).get("grpc_timeout_header_max") == "0s",
          "the client's grpc-timeout is not the stream's bound")
    retry = route.get("retry_policy", {})
    conditions = set(retry.get("retry_on", "").split(","))
    check(name, {"unavailable", "resource-exhausted"} <= conditions <= SAFE_RETRIES,
          f"retry_on {sorted(conditions)}: only conditions under which the call never started")
    check(name, "per_try_timeout" not in retry and "retriable_status_codes" not in retry
          and retry.get("retry_host_predicate", [{}])[0].get("name")
          == "envoy.retry_host_predicates.previous_hosts", f"retry policy {retry}")
    check(name, tlcm["circuit_breakers"]["thresholds"][0].get("retry_budget"), "no retry budget")
    # Metrics listener: only /metrics and /ready, both to the admin interface.
    mroutes = hcm(listeners["metrics"])["route_config"]["virtual_hosts"][0]["routes"]
    check(name, sorted(r["match"].get("path", "?") for r in mroutes) == ["/metrics", "/ready"]
          and all(r["route"]["cluster"] == "admin" for r in mroutes), f"metrics routes {mroutes}")
    # Shutdown: the graceful drain through the admin port, as long as the servers drain.
    drain = 30
    check(name, f"--drain-time-s={drain}" in envoy["args"] and "--drain-strategy=immediate"
          in envoy["args"], f"proxy args {envoy['args']}")
    admin_port = config["admin"]["address"]["socket_address"]["port_value"]
    pre_stop = envoy["lifecycle"]["preStop"]["exec"]["command"][-1]
    check(name, f"/dev/tcp/127.0.0.1/{admin_port}" in pre_stop and "POST /drain_listeners?graceful"
          in pre_stop, f"preStop does not start a graceful drain: {pre_stop}")
    check(name, spec["terminationGracePeriodSeconds"] > drain, "grace period within the drain")
    check(name, "httpGet" not in envoy["livenessProbe"], "liveness fails while draining (/ready)")
    # The proxy's Service selects the proxy, and the ServiceMonitor's label reaches it.
    svc = one(objs, "Service", PROXY)
    check(name, svc and svc["spec"]["selector"].get("app.kubernetes.io/component") == "proxy"
          and svc["metadata"]["labels"].get("tlcm-serve/metrics") == "true"
          and {p["targetPort"] for p in svc["spec"]["ports"]} == {"grpc", "metrics"},
          f"proxy Service {svc and svc['spec']}")
    for s in ("tlcm-tlcm-serve", "tlcm-tlcm-serve-headless"):
        check(name, one(objs, "Service", s)["spec"]["selector"].get("app.kubernetes.io/component")
              == "server", f"Service {s} does not select only the servers")

name = "proxy with TLS and client certificates"
objs = render(name, "-f", f"{CHART}/ci/values-tls-auth-fetch.yaml", *fetch, "--set", "proxy.enabled=true")
config = objs and envoy_config(name, objs)
if config:
    listener = next(l for l in config["static_resources"]["listeners"] if l["name"] == "grpc")
    tlcm = next(c for c in config["static_resources"]["clusters"] if c["name"] == "tlcm")
    down = listener["filter_chains"][0].get("transport_socket", {}).get("typed_config", {})
    up = tlcm.get("transport_socket", {}).get("typed_config", {})
    check(name, down.get("require_client_certificate") is True
          and down["common_tls_context"]["tls_certificates"][0]["certificate_chain"]["filename"]
          == "/etc/tlcm/tls/tls.crt", f"downstream TLS {down}")
    check(name, up.get("common_tls_context", {}).get("validation_context", {}).get("trusted_ca")
          == {"filename": "/etc/tlcm/tls/ca.crt"} and up["common_tls_context"].get("tls_certificates")
          and up.get("sni") == "tlcm-tlcm-serve.default.svc", f"upstream TLS {up}")
    spec = one(objs, "Deployment", PROXY)["spec"]["template"]["spec"]
    check(name, any(v.get("secret", {}).get("secretName") == "tlcm-tls" for v in spec["volumes"]),
          "the TLS Secret is not mounted into the proxy")
    restricted(name, spec)
refuses("proxy without the headless Service", "proxy.enabled needs service.headless",
        "-f", f"{CHART}/ci/values-default.yaml", "--set", "proxy.enabled=true",
        "--set", "service.headless=false")

name = "KEDA"
objs = render(name, "-f", f"{CHART}/ci/values-default.yaml", "--set", "keda.enabled=true",
              "--set", "keda.prometheusAddress=http://prometheus.monitoring.svc:9090",
              "--set", "autoscaling.minReplicas=2", "--set", "autoscaling.maxReplicas=6")
if objs:
    so = one(objs, "ScaledObject")
    check(name, so is not None and "HorizontalPodAutoscaler" not in kinds(objs),
          f"expected a ScaledObject and no HPA, got {kinds(objs)}")
    check(name, "replicas" not in one(objs, "Deployment", "tlcm-tlcm-serve")["spec"],
          "the Deployment sets replicas under KEDA")
    if so:
        sspec = so["spec"]
        check(name, sspec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                "name": "tlcm-tlcm-serve"}, f"target {sspec}")
        check(name, (sspec["minReplicaCount"], sspec["maxReplicaCount"]) == (2, 6),
              f"bounds {sspec['minReplicaCount']}..{sspec['maxReplicaCount']}")
        trigger = sspec["triggers"][0]
        meta = trigger["metadata"]
        check(name, trigger["type"] == "prometheus" and trigger.get("metricType") == "AverageValue"
              and meta["serverAddress"] == "http://prometheus.monitoring.svc:9090", f"trigger {trigger}")
        check(name, meta["query"] == 'sum(tlcm_in_flight_requests{namespace="default", '
              'release="tlcm"}) or vector(0)', f"query {meta['query']}")
        check(name, meta["threshold"] == "8", f"threshold {meta['threshold']}")
        check(name, sspec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"][
            "stabilizationWindowSeconds"] == 600, "autoscaling.behavior not passed to KEDA's HPA")
refuses("KEDA and the HPA together", "autoscaling.enabled and keda.enabled both scale the Deployment",
        "-f", f"{CHART}/ci/values-default.yaml", "--set", "keda.enabled=true",
        "--set", "keda.prometheusAddress=http://p:9090", "--set", "autoscaling.enabled=true")
refuses("KEDA without Prometheus", "keda.enabled needs keda.prometheusAddress",
        "-f", f"{CHART}/ci/values-default.yaml", "--set", "keda.enabled=true")
refuses("KEDA down to zero", "autoscaling.minReplicas must be at least 1",
        "-f", f"{CHART}/ci/values-default.yaml", "--set", "keda.enabled=true",
        "--set", "keda.prometheusAddress=http://p:9090", "--set", "autoscaling.minReplicas=0")

if failures:
    print("check_chart.py: %d failed:\n  %s" % (len(failures), "\n  ".join(failures)), file=sys.stderr)
    sys.exit(1)
print("check_chart.py: every chart case passed")
