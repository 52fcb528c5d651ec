{{/* Every object of one service. Called with (dict "root" $ "svc" name "cfg" settings). */}}

{{- define "shop.service.objects" -}}
{{- $ctx := dict "root" .root "component" .svc -}}
{{- $name := include "shop.name" (dict "root" .root "part" .svc) }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $name }}
  labels: {{- include "shop.labels" $ctx | nindent 4 }}
automountServiceAccountToken: false
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels: {{- include "shop.labels" $ctx | nindent 4 }}
spec:
  type: ClusterIP
  selector: {{- include "shop.selectorLabels" $ctx | nindent 4 }}
  ports:
    {{- include "shop.service.ports" . | nindent 4 }}
    {{- if .root.Values.metrics.enabled }}
    # Only here, not on the headless Service: a ServiceMonitor finds each pod once.
    - name: metrics
      port: {{ .root.Values.ports.metrics }}
      targetPort: metrics
      protocol: TCP
      appProtocol: http
    {{- end }}
---
# One address per ready pod, so clients balance round-robin over replicas (dns:/// targets).
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}-headless
  labels: {{- include "shop.labels" $ctx | nindent 4 }}
spec:
  clusterIP: None
  publishNotReadyAddresses: false
  selector: {{- include "shop.selectorLabels" $ctx | nindent 4 }}
  ports: {{- include "shop.service.ports" . | nindent 4 }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  labels: {{- include "shop.labels" $ctx | nindent 4 }}
spec:
  maxUnavailable: {{ .cfg.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels: {{- include "shop.selectorLabels" $ctx | nindent 6 }}
{{- if .cfg.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  labels: {{- include "shop.labels" $ctx | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $name }}
  minReplicas: {{ .cfg.autoscaling.minReplicas }}
  maxReplicas: {{ .cfg.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .cfg.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
---
{{ include "shop.service.deployment" . }}
{{- if .root.Values.networkPolicy.enabled }}
---
{{ include "shop.service.networkPolicy" . }}
{{- end }}
{{- end }}

{{- define "shop.service.ports" -}}
- name: grpc
  port: {{ .root.Values.ports.grpc }}
  targetPort: grpc
  protocol: TCP
  appProtocol: grpc
- name: grpc-probe
  port: {{ .root.Values.ports.probe }}
  targetPort: grpc-probe
  protocol: TCP
  appProtocol: grpc
{{- end }}

{{- define "shop.service.deployment" -}}
{{- $ctx := dict "root" .root "component" .svc -}}
{{- $name := include "shop.name" (dict "root" .root "part" .svc) -}}
{{- $values := .root.Values -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels: {{- include "shop.labels" $ctx | nindent 4 }}
spec:
  replicas: {{ include "shop.replicas" (dict "root" .root "cfg" .cfg "name" $name) }}
  revisionHistoryLimit: 3
  selector:
    matchLabels: {{- include "shop.selectorLabels" $ctx | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {{- include "shop.labels" $ctx | nindent 8 }}
      {{- $annotations := deepCopy (.cfg.podAnnotations | default dict) }}
      {{- if and $values.metrics.enabled $values.metrics.podAnnotations }}
      {{- $_ := set $annotations "prometheus.io/scrape" "true" }}
      {{- $_ := set $annotations "prometheus.io/port" (toString $values.ports.metrics) }}
      {{- $_ := set $annotations "prometheus.io/path" "/metrics" }}
      {{- end }}
      {{- with $annotations }}
      annotations: {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ $name }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      securityContext: {{- toYaml $values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: {{ include "shop.terminationGracePeriodSeconds" .root }}
      {{- with $values.imagePullSecrets }}
      imagePullSecrets: {{- toYaml . | nindent 8 }}
      {{- end }}
      topologySpreadConstraints:
        - maxSkew: {{ $values.topologySpread.maxSkew }}
          topologyKey: {{ $values.topologySpread.topologyKey }}
          whenUnsatisfiable: {{ $values.topologySpread.whenUnsatisfiable }}
          labelSelector:
            matchLabels: {{- include "shop.selectorLabels" $ctx | nindent 14 }}
      {{- with .cfg.nodeSelector }}
      nodeSelector: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .cfg.tolerations }}
      tolerations: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .cfg.affinity }}
      affinity: {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .svc }}
          image: {{ include "shop.image" . }}
          imagePullPolicy: {{ $values.image.pullPolicy }}
          ports:
            - name: grpc
              containerPort: {{ $values.ports.grpc }}
              protocol: TCP
            - name: grpc-probe
              containerPort: {{ $values.ports.probe }}
              protocol: TCP
            {{- if $values.metrics.enabled }}
            - name: metrics
              containerPort: {{ $values.ports.metrics }}
              protocol: TCP
            {{- end }}
          env: {{- include "shop.service.env" . | nindent 12 }}
          # Kubelets cannot present a client certificate: probes use the plaintext health port.
          # Readiness asks for the server (""), SERVING once the database answers and until
          # the drain; startup and liveness ask for `liveness`, SERVING while the process
          # runs, so a pod waiting for its database is kept out of the endpoints, not restarted.
          startupProbe:
            grpc: {port: {{ $values.ports.probe }}, service: liveness}
            {{- toYaml $values.probes.startup | nindent 12 }}
          readinessProbe:
            grpc: {port: {{ $values.ports.probe }}}
            {{- toYaml $values.probes.readiness | nindent 12 }}
          livenessProbe:
            grpc: {port: {{ $values.ports.probe }}, service: liveness}
            {{- toYaml $values.probes.liveness | nindent 12 }}
          {{- /* 0: no hook at all. A sleep of 0 is refused by API servers before 1.33, and the
                 chart supports 1.30 on (Chart.yaml's kubeVersion). */}}
          {{- with $values.shutdown.preStopSleepSeconds }}
          lifecycle:
            # Endpoint removal reaches every client's DNS and kube-proxy only after a while;
            # keep serving until then, before SIGTERM starts the drain.
            preStop:
              sleep: {seconds: {{ . }}}
          {{- end }}
          resources: {{- toYaml .cfg.resources | nindent 12 }}
          securityContext: {{- include "shop.restrictedContainer" . | nindent 12 }}
          volumeMounts:
            - name: tls
              mountPath: /etc/shop/tls
              readOnly: true
            - name: token-keys
              mountPath: /etc/shop/token-keys
              readOnly: true
            - name: tmp
              mountPath: /tmp
      volumes:
        # A projected Secret is updated in place on rotation; the server reloads it.
        - name: tls
          secret:
            secretName: {{ include "shop.tlsSecret" (dict "root" .root "identity" .svc) }}
            defaultMode: 0440
        # Keys added or removed in the Secret reach the pod in place; the service reads the
        # directory again (shop_grpc.tokens.KeyDirectory).
        - name: token-keys
          secret:
            secretName: {{ include "shop.tokenSecret" (dict "root" .root "signs" .cfg.signsTokens) }}
            defaultMode: 0440
        - name: tmp
          emptyDir: {sizeLimit: 64Mi}
{{- end }}

{{- define "shop.service.env" -}}
{{- $values := .root.Values -}}
- name: SHOP_LISTEN_ADDRESS
  value: "[::]:{{ $values.ports.grpc }}"
- name: SHOP_PROBE_ADDRESS
  value: "[::]:{{ $values.ports.probe }}"
- name: SHOP_METRICS_ADDRESS
  value: {{ ternary (printf "[::]:%d" (int $values.ports.metrics)) "off" $values.metrics.enabled | quote }}
- name: SHOP_TLS_DIR
  value: /etc/shop/tls
- name: SHOP_TOKEN_KEYS_DIR
  value: /etc/shop/token-keys
- name: SHOP_INSTANCE_ID
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: SHOP_DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- if eq $values.database.mode "external" }}
      {{- $ref := include "shop.databaseSecret" (dict "root" .root "svc" .svc) | fromYaml }}
      name: {{ $ref.name }}
      key: {{ $ref.key }}
      {{- else }}
      name: {{ include "shop.name" (dict "root" .root "part" "postgresql") }}
      key: {{ .svc }}-url
      {{- end }}
{{ include "shop.shutdownEnv" .root }}
{{- range $dep := .cfg.dependencies }}
- name: SHOP_{{ $dep | upper }}_TARGET
  value: {{ include "shop.target" (dict "root" $.root "svc" $dep) }}
{{- end }}
{{- range $key, $value := merge (deepCopy .cfg.env) $values.env }}
- name: {{ $key }}
  value: {{ $value | toString | quote }}
{{- end }}
- name: K8S_POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: K8S_NAMESPACE_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
- name: K8S_NODE_NAME
  valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
- name: OTEL_SERVICE_NAME
  value: shop-{{ .svc }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: k8s.pod.name=$(K8S_POD_NAME),k8s.namespace.name=$(K8S_NAMESPACE_NAME),k8s.node.name=$(K8S_NODE_NAME),k8s.deployment.name={{ include "shop.name" (dict "root" .root "part" .svc) }},service.namespace={{ .root.Release.Namespace }}
{{- $endpoint := include "shop.otlpEndpoint" .root }}
- name: OTEL_SDK_DISABLED
  value: {{ not $endpoint | quote }}
- name: OTEL_TRACES_EXPORTER
  value: {{ ternary "otlp" "none" (not (empty $endpoint)) }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $endpoint | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $values.tracing.sampler }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $values.tracing.samplerArg | quote }}
{{- end }}

{{/* Ingress: callers in the call graph and client pods on gRPC, anyone on the health-only
     probe port (kubelets), the scrapers (metrics.scrapeFrom, default anyone) on the metrics
     port. Egress: dependencies, DNS, OTLP, the database. */}}
{{- define "shop.service.networkPolicy" -}}
{{- $ctx := dict "root" .root "component" .svc -}}
{{- $values := .root.Values -}}
{{- $net := $values.networkPolicy -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "shop.name" (dict "root" .root "part" .svc) }}
  labels: {{- include "shop.labels" $ctx | nindent 4 }}
spec:
  podSelector:
    matchLabels: {{- include "shop.selectorLabels" $ctx | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        {{- range $caller := include "shop.callers" . | fromYamlArray }}
        - podSelector:
            matchLabels: {{- include "shop.selectorLabels" (dict "root" $.root "component" $caller) | nindent 14 }}
        {{- end }}
        - podSelector:
            matchLabels: {{- toYaml $net.clientPodLabels | nindent 14 }}
        {{- with .cfg.extraIngressFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - {port: grpc, protocol: TCP}
    - ports:
        - {port: grpc-probe, protocol: TCP}
    {{- if $values.metrics.enabled }}
    - ports:
        - {port: metrics, protocol: TCP}
      {{- with $values.metrics.scrapeFrom }}
      from: {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
  egress:
    {{- range $dep := .cfg.dependencies }}
    - to:
        - podSelector:
            matchLabels: {{- include "shop.selectorLabels" (dict "root" $.root "component" $dep) | nindent 14 }}
      ports:
        - {port: {{ $values.ports.grpc }}, protocol: TCP}
    {{- end }}
    - to:
        - namespaceSelector: {{- toYaml $net.dns.namespaceSelector | nindent 12 }}
          podSelector: {{- toYaml $net.dns.podSelector | nindent 12 }}
        {{- range $net.dns.ipBlocks }}
        - ipBlock: {{- toYaml . | nindent 12 }}
        {{- end }}
      ports:
        - {port: 53, protocol: UDP}
        - {port: 53, protocol: TCP}
    {{- if eq $values.database.mode "bundled" }}
    - to:
        - podSelector:
            matchLabels: {{- include "shop.selectorLabels" (dict "root" .root "component" "postgresql") | nindent 14 }}
      ports:
        - {port: 5432, protocol: TCP}
    {{- else }}
    - ports:
        - {port: {{ $values.database.egressPort }}, protocol: TCP}
      {{- with $values.database.egressTo }}
      to: {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
    {{- if $values.tracing.endpoint }}
    - ports:
        - {port: {{ $values.tracing.egressPort }}, protocol: TCP}
      {{- with $values.tracing.egressTo }}
      to: {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- else if $values.jaeger.enabled }}
    - to:
        - podSelector:
            matchLabels: {{- include "shop.selectorLabels" (dict "root" .root "component" "jaeger") | nindent 14 }}
      ports:
        - {port: 4317, protocol: TCP}
    {{- end }}
{{- end }}
