{{/*
Names. Kubernetes names are at most 63 characters (DNS labels), so every name is cut to 63 and
loses a trailing "-"; component suffixes are short so the cut rarely bites.
*/}}
{{- define "paddock.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "paddock.fullname" -}}
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

{{- define "paddock.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Common labels; pass (dict "ctx" $ "component" "api"). */}}
{{- define "paddock.labels" -}}
helm.sh/chart: {{ include "paddock.chart" .ctx }}
{{ include "paddock.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end -}}

{{- define "paddock.selectorLabels" -}}
app.kubernetes.io/name: {{ include "paddock.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "paddock.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "paddock.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "paddock.apiImage" -}}
{{- printf "%s:%s" .Values.image.apiRepository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "paddock.workerImage" -}}
{{- printf "%s:%s" .Values.image.workerRepository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "paddock.secretName" -}}
{{- printf "%s-secret" (include "paddock.fullname" .) -}}
{{- end -}}

{{/* The Secret holding the API keys and the signing secret: the operator's own, or the chart's. */}}
{{- define "paddock.authSecretName" -}}
{{- default (include "paddock.secretName" .) .Values.auth.existingSecret -}}
{{- end -}}

{{/* PADDOCK_PUBLIC_URL: publicUrl, else the Ingress host (https when it has a TLS secret). */}}
{{- define "paddock.publicUrl" -}}
{{- if .Values.publicUrl -}}
{{- .Values.publicUrl -}}
{{- else if and .Values.api.ingress.enabled .Values.api.ingress.host -}}
{{- printf "%s://%s" (ternary "https" "http" (ne .Values.api.ingress.tlsSecretName "")) .Values.api.ingress.host -}}
{{- end -}}
{{- end -}}

{{- define "paddock.redisName" -}}
{{- printf "%s-redis" (include "paddock.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Where the models ConfigMap (worker.modelsConfig) is mounted, as PADDOCK_MODELS names it. */}}
{{- define "paddock.modelsPath" -}}
/etc/paddock/models/models.yaml
{{- end -}}

{{/* The queue URL when it is not read from queue.existingSecret. */}}
{{- define "paddock.queueUrl" -}}
{{- if .Values.queue.redis.enabled -}}
{{- printf "redis://%s:6379/0" (include "paddock.redisName" .) -}}
{{- else -}}
{{- required "queue.url (redis://...), queue.existingSecret or queue.redis.enabled is required" .Values.queue.url -}}
{{- end -}}
{{- end -}}

{{/*
The PADDOCK_* environment shared by the facade, the workers and the Ray pods. Every name here is
a field of server/config.py's Settings (tests/deploy/test_helm_chart.py checks it).
*/}}
{{- define "paddock.env" -}}
- name: PADDOCK_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: PADDOCK_LOG_FORMAT
  value: "json"
{{- if and .Values.queue.existingSecret (not .Values.queue.redis.enabled) }}
- name: PADDOCK_QUEUE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.queue.existingSecret }}
      key: PADDOCK_QUEUE_URL
{{- else }}
- name: PADDOCK_QUEUE_URL
  value: {{ include "paddock.queueUrl" . | quote }}
{{- end }}
- name: PADDOCK_STORAGE_URL
  value: {{ .Values.storage.url | quote }}
- name: PADDOCK_DATA_DIR
  value: "/var/lib/paddock"
{{- with .Values.storage.s3EndpointUrl }}
- name: PADDOCK_S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.storage.s3Region }}
- name: PADDOCK_S3_REGION
  value: {{ . | quote }}
{{- end }}
{{- with .Values.storage.publicBaseUrl }}
- name: PADDOCK_PUBLIC_BASE_URL
  value: {{ . | quote }}
{{- end }}
{{- with include "paddock.publicUrl" . }}
- name: PADDOCK_PUBLIC_URL
  value: {{ . | quote }}
{{- end }}
{{- if .Values.worker.modelsConfig }}
- name: PADDOCK_MODELS
  value: {{ include "paddock.modelsPath" . | quote }}
{{- end }}
- name: PADDOCK_SIGNING_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "paddock.authSecretName" . }}
      key: PADDOCK_SIGNING_SECRET
{{- if eq .Values.auth.format "keysFile" }}
- name: PADDOCK_API_KEYS
  value: "/etc/paddock/keys/keys.yaml"
{{- else }}
- name: PADDOCK_API_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ include "paddock.authSecretName" . }}
      key: PADDOCK_API_KEYS
{{- end }}
{{- range $name, $value := .Values.settings }}
- name: {{ printf "PADDOCK_%s" ($name | upper) }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* envFrom: S3 credentials. */}}
{{- define "paddock.envFrom" -}}
{{- with .Values.storage.existingSecret }}
envFrom:
  - secretRef:
      name: {{ . }}
{{- end }}
{{- end -}}

{{/* Volumes every paddock container mounts: models registry, key file, file:// storage. */}}
{{- define "paddock.volumes" -}}
- name: data
{{- if .Values.storage.volume.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.storage.volume.existingClaim }}
{{- else if .Values.storage.volume.create }}
  persistentVolumeClaim:
    claimName: {{ include "paddock.fullname" . }}-data
{{- else if .Values.storage.volume.hostPath }}
  hostPath:
    path: {{ .Values.storage.volume.hostPath }}
    type: DirectoryOrCreate
{{- else }}
  emptyDir: {}
{{- end }}
{{- if .Values.worker.modelsConfig }}
- name: models-config
  configMap:
    name: {{ include "paddock.fullname" . }}-models
{{- end }}
{{- if eq .Values.auth.format "keysFile" }}
- name: api-keys
  secret:
    secretName: {{ include "paddock.authSecretName" . }}
    items:
      - key: keys.yaml
        path: keys.yaml
{{- end }}
{{- end -}}

{{- define "paddock.volumeMounts" -}}
- name: data
  mountPath: /var/lib/paddock
{{- if .Values.worker.modelsConfig }}
- name: models-config
  mountPath: {{ include "paddock.modelsPath" . | dir }}
  readOnly: true
{{- end }}
{{- if eq .Values.auth.format "keysFile" }}
- name: api-keys
  mountPath: /etc/paddock/keys
  readOnly: true
{{- end }}
{{- end -}}

{{/* GPU pod volumes: the above plus /dev/shm in memory and the weights. */}}
{{- define "paddock.gpuVolumes" -}}
{{ include "paddock.volumes" . }}
- name: dshm
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.worker.shmSizeLimit }}
{{- if .Values.worker.weights.existingClaim }}
- name: weights
  persistentVolumeClaim:
    claimName: {{ .Values.worker.weights.existingClaim }}
    readOnly: true
{{- else if .Values.worker.weights.hostPath }}
- name: weights
  hostPath:
    path: {{ .Values.worker.weights.hostPath }}
    type: Directory
{{- end }}
{{- end -}}

{{- define "paddock.gpuVolumeMounts" -}}
{{ include "paddock.volumeMounts" . }}
- name: dshm
  mountPath: /dev/shm
{{- if or .Values.worker.weights.existingClaim .Values.worker.weights.hostPath }}
- name: weights
  mountPath: {{ .Values.worker.weights.mountPath }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* The worker container's resources with the GPU limit. */}}
{{- define "paddock.gpuResources" -}}
{{- $res := deepCopy .Values.worker.resources -}}
{{- $limits := default (dict) $res.limits -}}
{{- if gt (int .Values.worker.gpusPerReplica) 0 -}}
{{- $_ := set $limits "nvidia.com/gpu" (int .Values.worker.gpusPerReplica) -}}
{{- end -}}
{{- $_ := set $res "limits" $limits -}}
{{- toYaml $res -}}
{{- end -}}

{{/*
Pod security for every paddock pod (facade, workers, Ray head and workers): uid 1000 / gid 100 is
the images' user (the Dockerfile's `paddock`, the Ray image's `ray`), so a file:// volume is
shared. Pass (dict "uid" N "gid" N) for another image's user (Redis, the test hook).
*/}}
{{- define "paddock.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid | default 1000 }}
runAsGroup: {{ .gid | default 100 }}
fsGroup: {{ .gid | default 100 }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "paddock.containerSecurityContext" -}}
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
{{- end -}}
