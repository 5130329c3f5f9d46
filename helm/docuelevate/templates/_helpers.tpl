{{/* Chart name, truncated to the 63 characters Kubernetes allows in names. */}}
{{- define "docuelevate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every resource name: <release>-docuelevate unless the release already says so. */}}
{{- define "docuelevate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "docuelevate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: docuelevate
{{- end }}

{{/*
Selector labels of one component (api, worker, beat, migrate, redis, postgresql, meilisearch).
Call with (dict "ctx" $ "component" "api"). These never change after install: selectors are
immutable.
*/}}
{{- define "docuelevate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "docuelevate.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The DocuElevate roles: the pods that may talk to Redis, PostgreSQL and Meilisearch. */}}
{{- define "docuelevate.clientSelector" -}}
matchLabels:
  app.kubernetes.io/name: {{ include "docuelevate.name" . }}
  app.kubernetes.io/instance: {{ .Release.Name }}
matchExpressions:
  - key: app.kubernetes.io/component
    operator: In
    values: [api, worker, beat, migrate]
{{- end }}

{{/* Image reference, pinned to the chart's appVersion unless a tag is given. */}}
{{- define "docuelevate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "docuelevate.secretName" -}}
{{- default (printf "%s-secrets" (include "docuelevate.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{- define "docuelevate.workdirClaim" -}}
{{- default (printf "%s-workdir" (include "docuelevate.fullname" .)) .Values.workdir.persistence.existingClaim }}
{{- end }}

{{/*
A generated secret value that survives upgrades: reuse the value already stored in the
release's Secret (lookup; empty when rendering offline), else the given value, else random.
Call with (dict "ctx" $ "key" "SESSION_SECRET" "value" .Values.secrets.sessionSecret "length" 50).
*/}}
{{- define "docuelevate.persistentSecret" -}}
{{- if .value }}
{{- .value }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace (include "docuelevate.secretName" .ctx) }}
{{- if and $existing (hasKey $existing.data .key) }}
{{- index $existing.data .key | b64dec }}
{{- else }}
{{- randAlphaNum (int .length) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Pod-level security settings shared by the DocuElevate pods. */}}
{{- define "docuelevate.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{/*
Plain environment of a DocuElevate container; the secrets come through envFrom.
Call with (dict "ctx" $ "roleEnv" .Values.api.env "podIpHost" true): the chart's fixed settings,
then .Values.env, then the role's own env, each overriding the one before. With podIpHost, the
pod's own address joins ALLOWED_HOSTS, since Prometheus scrapes /metrics with Host: <pod-ip>.
*/}}
{{- define "docuelevate.env" -}}
{{- $ctx := .ctx -}}
{{- $values := $ctx.Values -}}
{{- $fullname := include "docuelevate.fullname" $ctx -}}
{{- $env := dict "EXTERNAL_HOSTNAME" $values.externalHostname "SECURE_PROXY" "true" "WORKDIR" "/workdir" "METRICS_DIR" "/metrics" "LOG_FORMAT" "json" "BUILD" (default $ctx.Chart.AppVersion $values.image.tag) -}}
{{- if $values.meilisearch.enabled }}
{{- $_ := set $env "MEILISEARCH_URL" (printf "http://%s-meilisearch:7700" $fullname) }}
{{- else if $values.meilisearchUrl }}
{{- $_ := set $env "MEILISEARCH_URL" $values.meilisearchUrl }}
{{- end }}
{{- $env = mergeOverwrite $env (deepCopy $values.env) (deepCopy (.roleEnv | default dict)) }}
{{- if .podIpHost }}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
{{- $hosts := list "$(POD_IP)" }}
{{- with $env.ALLOWED_HOSTS }}
{{- $hosts = append $hosts (toString .) }}
{{- end }}
{{- $_ := set $env "ALLOWED_HOSTS" (join "," $hosts) }}
{{- end }}
{{- range $name, $value := $env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- with $values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* envFrom of every DocuElevate container: the Secret, then the user's own sources. */}}
{{- define "docuelevate.envFrom" -}}
- secretRef:
    name: {{ include "docuelevate.secretName" . }}
{{- with .Values.extraEnvFrom }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Volumes every DocuElevate pod has: scratch /tmp and the per-pod metrics directory. */}}
{{- define "docuelevate.localVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
# Per-pod request timings of the gunicorn workers: local to the pod, never on the shared volume.
- name: metrics
  emptyDir:
    sizeLimit: 256Mi
{{- end }}

{{- define "docuelevate.workdirVolume" -}}
- name: workdir
  {{- if .Values.workdir.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "docuelevate.workdirClaim" . }}
  {{- else }}
  emptyDir: {}
  {{- end }}
{{- end }}

{{- define "docuelevate.localVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: metrics
  mountPath: /metrics
{{- end }}

{{/* Rolls the pods when the chart-made Secret changes, since env is read only at start. */}}
{{- define "docuelevate.checksum" -}}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}
