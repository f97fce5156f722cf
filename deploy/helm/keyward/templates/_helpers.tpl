{{/* The chart's name, cut to the 63 characters of a DNS label. */}}
{{- define "keyward.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the prefix of every object's name. */}}
{{- define "keyward.fullname" -}}
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

{{- define "keyward.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "keyward.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keyward.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "keyward.labels" -}}
helm.sh/chart: {{ include "keyward.chart" . }}
{{ include "keyward.selectorLabels" . }}
app.kubernetes.io/version: {{ include "keyward.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "keyward.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "keyward.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "keyward.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret the chart creates from values, if any value is set. */}}
{{- define "keyward.createSecret" -}}
{{- $s := .Values.secrets }}
{{- if and (not $s.existingSecret) (or $s.peppers $s.masterKeys $s.postgresqlUrl $s.redisUrl) }}true{{ end }}
{{- end }}

{{/* The name of the Secret holding peppers and master keys (empty: none). */}}
{{- define "keyward.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else if include "keyward.createSecret" . }}
{{- include "keyward.fullname" . }}
{{- end }}
{{- end }}

{{/*
keyward.check fails the rendering, with a message naming the value and the
fix, for a combination keyward would refuse at start or that would lose data.
*/}}
{{- define "keyward.check" -}}
{{- $v := .Values }}
{{- $secret := include "keyward.secretName" . }}
{{- if and (gt (int $v.replicaCount) 1) (not $v.postgresql.enabled) }}
{{- fail (printf "replicaCount is %d but postgresql.enabled is false: SQLite serves one instance from one volume; set replicaCount: 1, or run on PostgreSQL (postgresql.enabled: true with its URL in a Secret, see docs/kubernetes.md)" (int $v.replicaCount)) }}
{{- end }}
{{- if $v.postgresql.enabled }}
{{- if not $secret }}
{{- fail "postgresql.enabled needs peppers and master keys from a Secret, shared by every instance: set secrets.existingSecret (recommended) or secrets.peppers and secrets.masterKeys (see docs/kubernetes.md)" }}
{{- end }}
{{- if and (not $v.secrets.existingSecret) (or (not $v.secrets.peppers) (not $v.secrets.masterKeys)) }}
{{- fail "postgresql.enabled needs both secrets.peppers and secrets.masterKeys (or secrets.existingSecret holding both): keyward refuses to start on PostgreSQL without them" }}
{{- end }}
{{- if and (not $v.postgresql.existingSecret) (not $v.secrets.existingSecret) (not $v.secrets.postgresqlUrl) }}
{{- fail "postgresql.enabled needs the database URL from a Secret: set postgresql.existingSecret, secrets.existingSecret, or secrets.postgresqlUrl" }}
{{- end }}
{{- end }}
{{- if and $v.redis.enabled (not $v.redis.existingSecret) (not $v.secrets.existingSecret) (not $v.secrets.redisUrl) }}
{{- fail "redis.enabled needs the Redis URL from a Secret: set redis.existingSecret, secrets.existingSecret, or secrets.redisUrl" }}
{{- end }}
{{- if and $v.redis.enabled (not $v.postgresql.enabled) }}
{{- fail "redis.enabled without postgresql.enabled: Redis carries invalidations between instances, and SQLite runs one; enable postgresql or disable redis" }}
{{- end }}
{{- if and (not $v.postgresql.enabled) $v.secrets.postgresqlUrl }}
{{- fail "secrets.postgresqlUrl is set but postgresql.enabled is false: enable postgresql or remove the URL" }}
{{- end }}
{{- end }}
