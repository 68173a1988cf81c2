{{/*
The chart's name, overridable with nameOverride.
*/}}
{{- define "oncall.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name, used for every object it creates. Kubernetes names
are limited to 63 characters.
*/}}
{{- define "oncall.fullname" -}}
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

{{- define "oncall.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "oncall.labels" -}}
helm.sh/chart: {{ include "oncall.chart" . }}
{{ include "oncall.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "oncall.selectorLabels" -}}
app.kubernetes.io/name: {{ include "oncall.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Selects the `oncall serve` pods, and not the migration Job's.
*/}}
{{- define "oncall.serverSelectorLabels" -}}
{{ include "oncall.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "oncall.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "oncall.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "oncall.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
"true" when the pods use an external NATS cluster, "" when each runs an
embedded server.
*/}}
{{- define "oncall.externalNats" -}}
{{- if or .Values.nats.url .Values.nats.existingSecret }}true{{ end }}
{{- end }}

{{/*
The Secret the pods take their secret environment from.
*/}}
{{- define "oncall.secretName" -}}
{{- default (include "oncall.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "oncall.configMapName" -}}
{{- default (include "oncall.fullname" .) .Values.existingConfigMap }}
{{- end }}

{{/*
The contents of oncall.yaml: a string verbatim, a map as YAML.
*/}}
{{- define "oncall.configFile" -}}
{{- if kindIs "string" .Values.config }}
{{- .Values.config | trimSuffix "\n" }}
{{- else }}
{{- toYaml (.Values.config | default dict) }}
{{- end }}
{{- end }}

{{/*
Stops the render with a clear message on a combination of values that cannot
work. Included by the Deployment, so every install and upgrade runs it.
*/}}
{{- define "oncall.validate" -}}
{{- $replicas := int .Values.replicas }}
{{- if and (gt $replicas 1) (not (include "oncall.externalNats" .)) }}
{{- fail (printf "replicas is %d, but more than one replica needs an external NATS cluster: set nats.url (or nats.existingSecret). The embedded NATS server keeps its streams on one pod's volume, so with it replicas must be 1." $replicas) }}
{{- end }}
{{- if and (not .Values.secrets.existingSecret) (not .Values.secrets.databaseUrl) }}
{{- fail "DATABASE_URL is required: set secrets.databaseUrl, or secrets.existingSecret to a Secret that has the key DATABASE_URL." }}
{{- end }}
{{- if and .Values.nats.existingSecret (not .Values.nats.existingSecretKey) }}
{{- fail "nats.existingSecret is set but nats.existingSecretKey is empty: name the key that holds NATS_URL." }}
{{- end }}
{{- if and (include "oncall.externalNats" .) (lt (int .Values.nats.replicas) 1) }}
{{- fail (printf "nats.replicas is %v: the ALERTS and NOTIFY streams need at least 1 replica (3 on a three-server cluster)." .Values.nats.replicas) }}
{{- end }}
{{- end }}

{{/*
Pod security context and image settings shared by the server and the
migration Job.
*/}}
{{- define "oncall.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}
