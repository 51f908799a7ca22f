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

{{- define "tlcm-serve.image" -}}
{{- printf "%s:%s" .Values.image.repository (default (printf "%s-cuda" .Chart.AppVersion) .Values.image.tag) -}}
{{- end -}}

{{- define "tlcm-serve.claimName" -}}
{{- default (printf "%s-models" (include "tlcm-serve.fullname" .)) .Values.modelStorage.existingClaim -}}
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
{{- include "tlcm-serve.textprotoField" (list "devices" .Values.server.devices "") }}
{{- include "tlcm-serve.textprotoField" (list "drain_grace_seconds" .Values.server.drainGraceSeconds "") }}
{{- if .Values.server.computeThreads }}
{{- include "tlcm-serve.textprotoField" (list "compute_threads" .Values.server.computeThreads "") }}
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

{{/* Command of an exec probe / the helm test: tlcm-client health against this pod. */}}
{{- define "tlcm-serve.execHealth" -}}
- tlcm-client
- health
- --target=localhost:{{ .Values.server.port }}
- --timeout_seconds=4
- --tls
- --ca_cert=/etc/tlcm/tls/ca.crt
- --tls_server_name={{ default (include "tlcm-serve.serviceHost" .) .Values.tls.serverName }}
{{- if .Values.tls.requireClientCert }}
- --client_cert=/etc/tlcm/tls/tls.crt
- --client_key=/etc/tlcm/tls/tls.key
{{- end }}
{{- end -}}
