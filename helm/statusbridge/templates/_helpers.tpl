{{- define "statusbridge.name" -}}statusbridge{{- end -}}

{{- define "statusbridge.fullname" -}}
{{- printf "%s-%s" .Release.Name "statusbridge" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "statusbridge.labels" -}}
app.kubernetes.io/name: statusbridge
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "statusbridge.selector" -}}
app.kubernetes.io/name: statusbridge
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "statusbridge.secretName" -}}
{{- default (include "statusbridge.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{- define "statusbridge.validate" -}}
{{- if and (eq .Values.mode "deployment") (gt (int .Values.replicaCount) 1) (not (hasPrefix "postgres" .Values.store.url)) -}}
{{- fail "replicaCount > 1 needs a PostgreSQL store.url: replicas must share one store to elect a single reconciler" -}}
{{- end -}}
{{- if and (eq .Values.mode "sidecar") (gt (int .Values.alertmanagerReplicas) 1) (not (hasPrefix "postgres" .Values.store.url)) -}}
{{- fail "sidecar mode with more than one Alertmanager replica needs a PostgreSQL store.url: every sidecar receives the same alerts, and only a shared store lets one of them publish" -}}
{{- end -}}
{{- if and (not .Values.existingSecret) (not .Values.incidentio.apiKey) -}}
{{- fail "set incidentio.apiKey or existingSecret (with key incidentio-api-key)" -}}
{{- end -}}
{{- end -}}

{{/*
The StatusBridge container, for the Deployment and for sidecar mode. In sidecar mode add it to the
Alertmanager pod, e.g. kube-prometheus-stack's alertmanager.alertmanagerSpec.containers, and point
Alertmanager at http://localhost:<port>/webhooks/alertmanager.
*/}}
{{- define "statusbridge.sidecarContainer" -}}
- name: statusbridge
  image: "{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}"
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["serve"]
  ports:
    - name: http
      containerPort: {{ .Values.service.port }}
  envFrom:
    - configMapRef:
        name: {{ include "statusbridge.fullname" . }}
  env:
    - name: STATUSBRIDGE_INCIDENTIO_API_KEY_FILE
      value: /etc/statusbridge/secret/incidentio-api-key
    - name: STATUSBRIDGE_WEBHOOK_BEARER_TOKEN
      valueFrom:
        secretKeyRef: {name: {{ include "statusbridge.secretName" . }}, key: webhook-bearer-token}
    - name: STATUSBRIDGE_ADMIN_TOKEN
      valueFrom:
        secretKeyRef: {name: {{ include "statusbridge.secretName" . }}, key: admin-token, optional: true}
    - name: STATUSBRIDGE_GRAFANA_HMAC_SECRET
      valueFrom:
        secretKeyRef: {name: {{ include "statusbridge.secretName" . }}, key: grafana-hmac-secret, optional: true}
    {{- if hasPrefix "postgres" .Values.store.url }}
    - name: STATUSBRIDGE_STORE_URL
      valueFrom:
        secretKeyRef: {name: {{ include "statusbridge.secretName" . }}, key: store-url}
    {{- end }}
  readinessProbe:
    httpGet: {path: /readyz, port: http}
    periodSeconds: 5
    # Above /readyz's own 2 s wait for the store (bridge/pacing.py: STORE_PING_TIMEOUT): a hung
    # store is then a 503 naming it, not a probe timeout that says nothing.
    timeoutSeconds: 3
  livenessProbe:
    httpGet: {path: /healthz, port: http}
    periodSeconds: 10
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities: {drop: ["ALL"]}
    seccompProfile: {type: RuntimeDefault}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  volumeMounts:
    - {name: rules, mountPath: /etc/statusbridge/rules, readOnly: true}
    - {name: secret, mountPath: /etc/statusbridge/secret, readOnly: true}
    - {name: data, mountPath: /data}
    - {name: tmp, mountPath: /tmp}
{{- end -}}

{{- define "statusbridge.sidecarVolumes" -}}
- name: rules
  configMap:
    name: {{ include "statusbridge.fullname" . }}-rules
- name: secret
  secret:
    secretName: {{ include "statusbridge.secretName" . }}
    items: [{key: incidentio-api-key, path: incidentio-api-key}]
- name: tmp
  emptyDir: {}
{{- end -}}
