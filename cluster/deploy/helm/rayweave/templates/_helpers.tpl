{{/* Labels of every object of the release. */}}
{{- define "rayweave.labels" -}}
app.kubernetes.io/name: rayweave
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* The environment of every Ray container: the database URL from its Secret; the number of run coordinators
(the same in every process); the request-id middleware that Serve's HTTP proxies load
(serve.middleware.PROXY_CALLBACK, as `rayweave serve` sets it); extra settings. */}}
{{- define "rayweave.env" -}}
- name: RAYWEAVE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.secretName }}
      key: {{ .Values.database.secretKey }}
- name: RAYWEAVE_COORDINATORS
  value: {{ .Values.coordinators | quote }}
- name: RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH
  value: serve.middleware.proxy_middlewares
{{- if .Values.extraEnv }}
{{ toYaml .Values.extraEnv }}
{{- end }}
{{- end }}

{{/* The Ray containers run as the image's unprivileged user (uid 10001). */}}
{{- define "rayweave.securityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
capabilities:
  drop:
    - ALL
{{- end }}

{{/* Ray's token authentication: KubeRay sets RAY_AUTH_MODE and RAY_AUTH_TOKEN in every Ray container and
sends the token itself to the dashboard. */}}
{{- define "rayweave.authOptions" -}}
mode: token
{{- if .Values.rayAuth.secretName }}
secretName: {{ .Values.rayAuth.secretName }}
{{- end }}
{{- end }}

{{/* The autoscaler settings of both Ray clusters. */}}
{{- define "rayweave.autoscaling" -}}
enableInTreeAutoscaling: {{ .Values.autoscaler.enabled }}
autoscalerOptions:
  idleTimeoutSeconds: {{ .Values.autoscaler.idleTimeoutSeconds }}
  upscalingMode: {{ .Values.autoscaler.upscalingMode }}
{{- end }}
