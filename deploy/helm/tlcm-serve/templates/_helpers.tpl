{{/* Chart name, overridable. */}}
{{- define "tlcm-serve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Resource name prefix: "<release>-tlcm-serve" unless the release name already holds it. */}}
{{- define "tlcm-serve.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tlcm-serve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tlcm-serve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tlcm-serve.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "tlcm-serve.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* "repository:tag", with "@digest" appended when one is given. Arguments: (list repository tag digest). */}}
{{- define "tlcm-serve.imageRef" -}}
{{- $ref := printf "%s:%s" (index . 0) (index . 1) -}}
{{- with index . 2 -}}
{{- $ref = printf "%s@%s" $ref . -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{/* The server image (also runs tlcm-client in the probes, the weights wait and the helm test). */}}
{{- define "tlcm-serve.image" -}}
{{- include "tlcm-serve.imageRef" (list .Values.image.repository (default (printf "%s-cuda" .Chart.AppVersion) .Values.image.tag) .Values.image.digest) -}}
{{- end -}}

{{/* The proxy's Envoy image (proxy.image). */}}
{{- define "tlcm-serve.proxyImage" -}}
{{- include "tlcm-serve.imageRef" (list .Values.proxy.image.repository .Values.proxy.image.tag .Values.proxy.image.digest) -}}
{{- end -}}

{{/* The download image (docker/Dockerfile.fetch); repository defaults to the server image's. */}}
{{- define "tlcm-serve.fetchImage" -}}
{{- $image := .Values.modelFetch.image -}}
{{- include "tlcm-serve.imageRef" (list (default .Values.image.repository $image.repository) (default (printf "%s-fetch" .Chart.AppVersion) $image.tag) $image.digest) -}}
{{- end -}}

{{/*
Where the weights come from; fails with what to set when nothing would fill the volume.
Prints "claim" (modelStorage.existingClaim), "volume" (modelStorage.volume) or "created" (a PVC of
this chart, filled by the download Job).
*/}}
{{- define "tlcm-serve.modelSource" -}}
{{- $s := .Values.modelStorage -}}
{{- if and $s.existingClaim $s.volume -}}
{{- fail "modelStorage: set existingClaim or volume, not both" -}}
{{- else if $s.volume -}}
{{- if .Values.modelFetch.enabled -}}
{{- fail "modelFetch fills a PersistentVolumeClaim: with modelStorage.volume, fill that volume beforehand (docs/deploy.md, section 3)" -}}
{{- end -}}
volume
{{- else if $s.existingClaim -}}
claim
{{- else if .Values.modelFetch.enabled -}}
created
{{- else -}}
{{- fail "no model weights: set modelStorage.existingClaim (a filled PersistentVolumeClaim), modelStorage.volume (e.g. node-local weights), or modelFetch.enabled with modelFetch.lock (a download Job fills a new claim); docs/deploy.md, section 3" -}}
{{- end -}}
{{- end -}}

{{- define "tlcm-serve.claimName" -}}
{{- default (printf "%s-models" (include "tlcm-serve.fullname" .)) .Values.modelStorage.existingClaim -}}
{{- end -}}

{{/* The pod spec of the download Job (docs/deploy.md, section 3). Its hash names the Job. */}}
{{- define "tlcm-serve.fetchPodSpec" -}}
restartPolicy: OnFailure
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.tolerations }}
# The server's tolerations, so that the Job may run beside the server pods (see affinity).
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
affinity:
  podAffinity:
    # Prefer a node running this release's servers: a ReadWriteOnce volume attached there can
    # be mounted by the Job too.
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "tlcm-serve.selectorLabels" . | nindent 14 }}
              app.kubernetes.io/component: server
containers:
  - name: fetch
    image: {{ include "tlcm-serve.fetchImage" . }}
    imagePullPolicy: {{ .Values.modelFetch.image.pullPolicy }}
    command: ["bash", "-ec"]
    args:
      - |
        fetch_models.sh --dest {{ .Values.modelStorage.mountPath | quote }} \
            --models {{ .Values.modelFetch.families | quote }} --lock /etc/tlcm-fetch/models.lock \
            --config /tmp/fetched.textproto --path-prefix {{ .Values.modelStorage.mountPath | quote }}{{ range .Values.modelFetch.extraArgs }} {{ . | quote }}{{ end }}
        # What the servers' wait-for-weights init container looks for.
        printf '%s\n' "$TLCM_FETCH_ID" > {{ printf "%s/.tlcm-fetch-id.tmp" .Values.modelStorage.mountPath | quote }}
        mv {{ printf "%s/.tlcm-fetch-id.tmp" .Values.modelStorage.mountPath | quote }} {{ include "tlcm-serve.fetchIdFile" . | quote }}
    env:
      - name: TLCM_FETCH_ID
        valueFrom:
          fieldRef: {fieldPath: "metadata.labels['tlcm-serve/fetch-id']"}
      - {name: HOME, value: /tmp}
      - {name: HF_HOME, value: /tmp/hf}
      {{- with .Values.modelFetch.tokenSecret.name }}
      - name: HF_TOKEN
        valueFrom:
          secretKeyRef:
            name: {{ . }}
            key: {{ $.Values.modelFetch.tokenSecret.key }}
      {{- end }}
    securityContext:
      {{- toYaml .Values.securityContext | nindent 6 }}
    resources:
      {{- toYaml .Values.modelFetch.resources | nindent 6 }}
    volumeMounts:
      - {name: models, mountPath: {{ .Values.modelStorage.mountPath }}}
      - {name: lock, mountPath: /etc/tlcm-fetch, readOnly: true}
      - {name: tmp, mountPath: /tmp}
volumes:
  - name: models
    persistentVolumeClaim:
      claimName: {{ include "tlcm-serve.claimName" . }}
  - name: lock
    configMap:
      name: {{ include "tlcm-serve.fullname" . }}-fetch
  - name: tmp
    emptyDir:
      sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end -}}

{{/* Identity of one download: the hash of the Job's pod spec and the lock (a changed pin, image or argument is a new Job). */}}
{{- define "tlcm-serve.fetchId" -}}
{{- printf "%s\n%s" (include "tlcm-serve.fetchPodSpec" .) .Values.modelFetch.lock | sha256sum | trunc 12 -}}
{{- end -}}

{{/* Name of the download Job: "<fullname>-fetch-<fetch id>" (63 characters at most). */}}
{{- define "tlcm-serve.fetchJobName" -}}
{{- printf "%s-fetch-%s" (include "tlcm-serve.fullname" . | trunc 44 | trimSuffix "-") (include "tlcm-serve.fetchId" .) -}}
{{- end -}}

{{/* The file the download Job writes last, holding its fetch id. */}}
{{- define "tlcm-serve.fetchIdFile" -}}
{{- printf "%s/.tlcm-fetch-id" (trimSuffix "/" .Values.modelStorage.mountPath) -}}
{{- end -}}

{{/*
The drain grace the server will use, in whole seconds (rounded up): a --drain_grace_seconds flag in
server.extraArgs, else rawConfig's drain_grace_seconds (required there), else
server.drainGraceSeconds.
*/}}
{{- define "tlcm-serve.drainGraceSeconds" -}}
{{- $args := join " " .Values.server.extraArgs -}}
{{- $flag := "--?drain_grace_seconds[= ]+([0-9.]+)" -}}
{{- $field := "(?m)^[ \t]*drain_grace_seconds[ \t]*:[ \t]*([0-9.]+)" -}}
{{- if regexMatch $flag $args -}}
{{- regexFind $flag $args | regexFind "[0-9.]+$" | float64 | ceil | int -}}
{{- else if .Values.rawConfig -}}
{{- if not (regexMatch $field .Values.rawConfig) -}}
{{- fail "rawConfig: state drain_grace_seconds explicitly: the pod's terminationGracePeriodSeconds is derived from it" -}}
{{- end -}}
{{- regexFind $field .Values.rawConfig | regexFind "[0-9.]+$" | float64 | ceil | int -}}
{{- else -}}
{{- .Values.server.drainGraceSeconds | float64 | ceil | int -}}
{{- end -}}
{{- end -}}

{{/*
LibTorch threads written into the configuration: server.computeThreads when set (0 = every core
of the node), else the container's CPU request rounded up ("4", 4, "3500m"); nothing when neither.
*/}}
{{- define "tlcm-serve.computeThreads" -}}
{{- if not (kindIs "invalid" .Values.server.computeThreads) -}}
{{- .Values.server.computeThreads | int -}}
{{- else -}}
{{- $cpu := toString (dig "requests" "cpu" "" .Values.resources) -}}
{{- if hasSuffix "m" $cpu -}}
{{- div (add (trimSuffix "m" $cpu | int) 999) 1000 -}}
{{- else if $cpu -}}
{{- $cpu | float64 | ceil | int -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The Deployment's update strategy: .Values.strategy when given; else Recreate for a ReadWriteOnce(Pod)
claim (a second pod on another node could not attach it), else a rolling update that stops an old
pod before starting its replacement (no spare GPU needed).
*/}}
{{- define "tlcm-serve.strategy" -}}
{{- if .Values.strategy -}}
{{- toYaml .Values.strategy -}}
{{- else if and (ne (include "tlcm-serve.modelSource" .) "volume") (or (has "ReadWriteOnce" .Values.modelStorage.accessModes) (has "ReadWriteOncePod" .Values.modelStorage.accessModes)) -}}
type: Recreate
{{- else -}}
type: RollingUpdate
rollingUpdate:
  maxSurge: 0
  maxUnavailable: 1
{{- end -}}
{{- end -}}

{{/* DNS name of the ClusterIP Service, used by the helm test and as the default TLS server name. */}}
{{- define "tlcm-serve.serviceHost" -}}
{{- printf "%s.%s.svc" (include "tlcm-serve.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/*
One text-format protobuf field as "\n<pad>key: value" (repeated for lists, a `key { ... }` block for
maps, strings quoted). YAML numbers arrive as float64: whole ones are printed as integers.
Arguments: (list key value pad).
*/}}
{{- define "tlcm-serve.textprotoField" -}}
{{- $key := index . 0 -}}
{{- $value := index . 1 -}}
{{- $pad := index . 2 -}}
{{- if kindIs "slice" $value -}}
{{- range $value -}}
{{- include "tlcm-serve.textprotoField" (list $key . $pad) -}}
{{- end -}}
{{- else if kindIs "map" $value -}}
{{- printf "\n%s%s {" $pad $key -}}
{{- range $k, $v := $value -}}
{{- include "tlcm-serve.textprotoField" (list $k $v (printf "%s  " $pad)) -}}
{{- end -}}
{{- printf "\n%s}" $pad -}}
{{- else if kindIs "string" $value -}}
{{- printf "\n%s%s: %s" $pad $key (quote $value) -}}
{{- else if and (kindIs "float64" $value) (eq (floor $value) $value) -}}
{{- printf "\n%s%s: %d" $pad $key (int64 $value) -}}
{{- else -}}
{{- printf "\n%s%s: %v" $pad $key $value -}}
{{- end -}}
{{- end -}}

{{/* The server configuration file. */}}
{{- define "tlcm-serve.serverConfig" -}}
{{- if .Values.rawConfig -}}
{{ .Values.rawConfig }}
{{- else -}}
# proto-file: proto/tlcm/v1/server_config.proto
# proto-message: tlcm.v1.ServerConfig
# Rendered by the tlcm-serve Helm chart from its values (server, models).
listen_address: "0.0.0.0"
{{- include "tlcm-serve.textprotoField" (list "port" .Values.server.port "") }}
{{- include "tlcm-serve.textprotoField" (list "metrics_port" .Values.server.metricsPort "") }}
{{- include "tlcm-serve.textprotoField" (list "http_port" .Values.server.httpPort "") }}
{{- include "tlcm-serve.textprotoField" (list "devices" .Values.server.devices "") }}
{{- include "tlcm-serve.textprotoField" (list "drain_grace_seconds" .Values.server.drainGraceSeconds "") }}
{{- with include "tlcm-serve.computeThreads" . }}
{{- include "tlcm-serve.textprotoField" (list "compute_threads" (int .) "") }}
{{- end }}
{{- if .Values.tls.enabled }}
tls {
  cert_file: "/etc/tlcm/tls/tls.crt"
  key_file: "/etc/tlcm/tls/tls.key"
{{- if .Values.tls.requireClientCert }}
  client_ca_file: "/etc/tlcm/tls/ca.crt"
{{- end }}
}
{{- end }}
{{- if .Values.auth.enabled }}
auth_token_file: "/etc/tlcm/auth/tokens"
{{- end }}
{{- with .Values.server.keepalive }}
{{- include "tlcm-serve.textprotoField" (list "keepalive" . "") }}
{{- end }}
{{- range $k, $v := .Values.server.extraFields }}
{{- include "tlcm-serve.textprotoField" (list $k $v "") }}
{{- end }}
{{- range .Values.models }}
{{- include "tlcm-serve.textprotoField" (list "models" . "") }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
gRPC health service names: readiness (and startup) ask the whole server, liveness the worker watch,
the proxy the Generate service (SERVING exactly when "" is: loaded, warm and not draining).
*/}}
{{- define "tlcm-serve.readinessService" -}}{{- end -}}
{{- define "tlcm-serve.proxyHealthService" -}}tlcm.v1.TlcmService{{- end -}}
{{- define "tlcm-serve.livenessService" -}}tlcm.v1.Liveness{{- end -}}

{{/*
Shell lines of a TLS call from inside the cluster: set the positional parameters to tlcm-client's
connection flags. --ca_cert only when the Secret holds a ca.crt; without one the client verifies
against the image's system roots (the certificate must then chain to a public CA and name
tls.serverName).
*/}}
{{- define "tlcm-serve.tlsClientArgs" -}}
set -- "$@" --tls --tls_server_name={{ default (include "tlcm-serve.serviceHost" .) .Values.tls.serverName }}
if [ -s /etc/tlcm/tls/ca.crt ]; then set -- "$@" --ca_cert=/etc/tlcm/tls/ca.crt; fi
{{- if .Values.tls.requireClientCert }}
set -- "$@" --client_cert=/etc/tlcm/tls/tls.crt --client_key=/etc/tlcm/tls/tls.key
{{- end }}
{{- end -}}

{{/*
A probe's action: Kubernetes' gRPC probe, or with TLS (which it cannot speak) `tlcm-client health`
run in the container. Arguments: (list $ service timeoutSeconds).
*/}}
{{- define "tlcm-serve.probeAction" -}}
{{- $ := index . 0 -}}
{{- $service := index . 1 -}}
{{- if $.Values.tls.enabled -}}
exec:
  command:
    - sh
    - -c
    - |
      set -- --target=localhost:{{ $.Values.server.port }} --timeout_seconds={{ max 1 (sub (int (index . 2)) 1) }} --service={{ $service | quote }}
      {{- include "tlcm-serve.tlsClientArgs" $ | nindent 6 }}
      exec tlcm-client health "$@"
{{- else -}}
grpc:
  port: {{ $.Values.server.port }}
  {{- with $service }}
  service: {{ . }}
  {{- end }}
{{- end -}}
{{- end -}}

{{/*
"true" when an autoscaler owns the Deployment's replica count; fails when both would (KEDA makes an
HPA of its own, and two HPAs on one Deployment fight over it).
*/}}
{{- define "tlcm-serve.autoscaled" -}}
{{- if and .Values.autoscaling.enabled .Values.keda.enabled -}}
{{- fail "autoscaling.enabled and keda.enabled both scale the Deployment (KEDA creates an HPA of its own): turn one off (docs/deploy.md, Autoscaling)" -}}
{{- end -}}
{{- if or .Values.autoscaling.enabled .Values.keda.enabled -}}true{{- end -}}
{{- end -}}

{{/* Port of the proxy's Envoy admin interface, on loopback only (the metrics listener forwards /metrics and /ready to it). */}}
{{- define "tlcm-serve.proxyAdminPort" -}}9902{{- end -}}

{{/*
The proxy's Envoy configuration (templates/proxy.yaml; docs/deploy.md, Balancing). Calls go to the
server pod with the fewest calls in flight; no timeout of the proxy's own cuts a stream (the
client's deadline, sent as grpc-timeout, is the only limit); a call is retried on another pod only
while no response has started.
*/}}
{{- define "tlcm-serve.proxyConfig" -}}
{{- $p := .Values.proxy -}}
{{- $headless := printf "%s-headless.%s.svc.cluster.local" (include "tlcm-serve.fullname" .) .Release.Namespace -}}
{{- $serverName := default (include "tlcm-serve.serviceHost" .) .Values.tls.serverName -}}
{{- $keepalive := dict "interval" "30s" "timeout" "20s" }}
admin:
  address:
    socket_address: {address: 127.0.0.1, port_value: {{ include "tlcm-serve.proxyAdminPort" . }}}
static_resources:
  listeners:
    - name: grpc
      address:
        socket_address: {address: 0.0.0.0, port_value: {{ .Values.service.port }}}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: grpc
                codec_type: HTTP2
                # HTTP/2 keepalive pings on both sides close a vanished peer's connection, and its
                # streams, within interval + timeout (slower than the server's
                # min_client_ping_interval_ms, default 10 s, allows).
                http2_protocol_options:
                  connection_keepalive: {{ toJson $keepalive }}
                # A stream may stay quiet for as long as a call waits in a server's queue.
                stream_idle_timeout: 0s
                route_config:
                  name: tlcm
                  virtual_hosts:
                    - name: tlcm
                      domains: ["*"]
                      routes:
                        # Every service of the server: Generate, ListModels, health, reflection.
                        - match: {prefix: /}
                          route:
                            cluster: tlcm
                            # No route timeout (Envoy's default, 15 s, would cut generations).
                            timeout: 0s
                            # The client's grpc-timeout header bounds the call, uncapped.
                            max_stream_duration: {grpc_timeout_header_max: 0s}
                            retry_policy:
                              # All of these mean the pod never started the call: no connection,
                              # the stream refused, or a status in the response headers (a gRPC
                              # status arrives there only when no message was sent): UNAVAILABLE
                              # while draining, RESOURCE_EXHAUSTED when the queue is full.
                              retry_on: connect-failure,refused-stream,unavailable,resource-exhausted
                              num_retries: {{ $p.retries }}
                              retry_host_predicate:
                                - name: envoy.retry_host_predicates.previous_hosts
                                  typed_config:
                                    "@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate
                              host_selection_retry_max_attempts: 3
                              retry_back_off: {base_interval: 0.1s, max_interval: 1s}
                http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          {{- if .Values.tls.enabled }}
          # TLS ends here (a per-call balancer must read the calls) with the server's certificate,
          # and starts again towards the pods.
          transport_socket:
            name: envoy.transport_sockets.tls
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
              {{- if .Values.tls.requireClientCert }}
              require_client_certificate: true
              {{- end }}
              common_tls_context:
                alpn_protocols: [h2]
                tls_certificates:
                  - certificate_chain: {filename: /etc/tlcm/tls/tls.crt}
                    private_key: {filename: /etc/tlcm/tls/tls.key}
                {{- if .Values.tls.requireClientCert }}
                validation_context:
                  trusted_ca: {filename: /etc/tlcm/tls/ca.crt}
                {{- end }}
          {{- end }}
    - name: metrics
      address:
        socket_address: {address: 0.0.0.0, port_value: {{ $p.metricsPort }}}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: metrics
                route_config:
                  name: metrics
                  virtual_hosts:
                    - name: metrics
                      domains: ["*"]
                      # Only these two paths reach the admin interface; everything else is 404.
                      routes:
                        - match: {path: /metrics}
                          route: {cluster: admin, prefix_rewrite: /stats/prometheus}
                        - match: {path: /ready}
                          route: {cluster: admin}
                http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
    - name: tlcm
      # Every ready server pod, from the headless Service's DNS records.
      cluster_type:
        name: envoy.cluster.dns
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.clusters.dns.v3.DnsCluster
          dns_refresh_rate: 5s
          dns_lookup_family: V4_PREFERRED
      connect_timeout: 5s
      load_assignment:
        cluster_name: tlcm
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address: {address: {{ $headless }}, port_value: {{ .Values.server.port }}}
      # The pod with the fewest calls in flight, over all pods (not two picked at random): calls
      # differ 20-fold in cost and a release has few pods.
      load_balancing_policy:
        policies:
          - typed_extension_config:
              name: envoy.load_balancing_policies.least_request
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest
                selection_method: FULL_SCAN
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config:
            http2_protocol_options:
              connection_keepalive: {{ toJson $keepalive }}
      health_checks:
        - grpc_health_check: {service_name: {{ include "tlcm-serve.proxyHealthService" . }}}
          interval: {{ $p.healthCheck.intervalSeconds }}s
          timeout: {{ $p.healthCheck.timeoutSeconds }}s
          unhealthy_threshold: {{ $p.healthCheck.unhealthyThreshold }}
          healthy_threshold: 1
          # Check idle pods as often as busy ones (a new pod gets calls after its first check).
          no_traffic_interval: {{ $p.healthCheck.intervalSeconds }}s
      common_lb_config:
        # A pod new to DNS gets no calls before its first passing check.
        ignore_new_hosts_until_first_hc: true
      # A pod gone from DNS (not ready: draining) gets no new calls, whatever its last check said.
      ignore_health_on_host_removal: true
      outlier_detection:
        consecutive_5xx: {{ $p.outlierDetection.consecutiveFailures }}
        interval: 10s
        base_ejection_time: {{ $p.outlierDetection.baseEjectionSeconds }}s
        max_ejection_percent: {{ $p.outlierDetection.maxEjectionPercent }}
      circuit_breakers:
        thresholds:
          - max_requests: {{ $p.maxRequests }}
            max_pending_requests: {{ $p.maxRequests }}
            retry_budget:
              budget_percent: {value: {{ $p.retryBudgetPercent }}}
              min_retry_concurrency: 3
      {{- if .Values.tls.enabled }}
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
          sni: {{ $serverName }}
          common_tls_context:
            alpn_protocols: [h2]
            {{- if .Values.tls.requireClientCert }}
            tls_certificates:
              - certificate_chain: {filename: /etc/tlcm/tls/tls.crt}
                private_key: {filename: /etc/tlcm/tls/tls.key}
            {{- end }}
            # The pods' certificate must name tls.serverName (default: the ClusterIP Service's
            # name), checked against the Secret's ca.crt.
            validation_context:
              trusted_ca: {filename: /etc/tlcm/tls/ca.crt}
              match_typed_subject_alt_names:
                - san_type: DNS
                  matcher: {exact: {{ $serverName }}}
      {{- end }}
    - name: admin
      connect_timeout: 1s
      load_assignment:
        cluster_name: admin
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address: {address: 127.0.0.1, port_value: {{ include "tlcm-serve.proxyAdminPort" . }}}
{{- end -}}
