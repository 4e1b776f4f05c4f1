{{/* Labels every object of the chart carries. Helm itself sets app.kubernetes.io/managed-by: Helm at install. */}}
{{- define "loco.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: loco
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "name" "loco-api"). */}}
{{- define "loco.selector" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- end }}

{{/* loco.labels plus the component's name (dict "ctx" $ "name" "loco-api"). */}}
{{- define "loco.componentLabels" -}}
{{ include "loco.labels" .ctx }}
app.kubernetes.io/name: {{ .name }}
{{- end }}

{{/* An image reference from {repository, tag, digest}: the digest wins. (dict "ctx" $ "image" .Values.image "path" "image") */}}
{{- define "loco.image" -}}
{{- $i := .image -}}
{{- if not $i.repository }}{{ fail (printf "%s.repository is empty: set the image of this component" .path) }}{{ end -}}
{{- if $i.digest -}}
{{ $i.repository }}@{{ $i.digest }}
{{- else -}}
{{ $i.repository }}:{{ $i.tag | default .ctx.Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/* The restricted Pod Security Standard, pod level. Not values on purpose: only the ids are. */}}
{{- define "loco.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
fsGroup: {{ .Values.podSecurity.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The restricted Pod Security Standard, container level, plus a read-only root filesystem. */}}
{{- define "loco.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "loco.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/* DATABASE_URL from the existing Secret; every loco process needs it. */}}
{{- define "loco.databaseEnv" -}}
{{- $s := .Values.secrets.database -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "secrets.database.secretName is required: the name of an existing Secret holding the database URL" $s.secretName }}
      key: {{ $s.key }}
{{- end }}

{{/* Env from an optional secret reference: (dict "env" "NAME" "ref" .Values.x.secret). */}}
{{- define "loco.secretEnv" -}}
{{- if .ref.secretName -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .ref.secretName }}
      key: {{ .ref.key }}
{{- end }}
{{- end }}

{{/*
A daemon's slot, refused while the daemon is a skeleton: (dict "ctx" $ "key" "sleeper"
"binary" "loco-sleeper" "built" false "commands" "`loco-sleeper serve --help` and `loco-sleeper scan --help`"). The daemon's issue
sets built to true in its template once the image and `--help` flags exist.
*/}}
{{- define "loco.daemonSlot" -}}
{{- $v := index .ctx.Values .key -}}
{{- if not .built -}}
{{- fail (printf "%s.enabled=true, but %s is not built yet (every command answers \"not built yet\"): there is no %s image for %s.image.repository and no flags of %s to render. Its issue fills this slot; until then keep %s.enabled=false." .key .binary .binary .key .commands .key) -}}
{{- end -}}
{{- if not $v.image.repository -}}
{{- fail (printf "%s.enabled=true needs %s.image.repository (the %s image)" .key .key .binary) -}}
{{- end -}}
{{- end }}

{{/* The /tmp every container gets, since the root filesystem is read-only. */}}
{{- define "loco.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}
