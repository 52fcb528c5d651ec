{{/* Names, labels and the per-service settings every template shares. */}}

{{- define "shop.chart" -}}
{{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* What every object name starts with: the release name, cut short *before* a suffix is
     added, so that `<prefix>-<part>` fits wherever Kubernetes puts it. The tightest fit is the
     bundled PostgreSQL: a StatefulSet's pods carry the label controller-revision-hash =
     `<name>-<hash of up to 10 characters>`, and a label value has at most 63, so its name may
     have 52 and `<prefix>-postgresql` leaves the prefix 41. A longer release name (Helm allows
     53) keeps its first 35 characters and a hash of the whole name, so two long names that
     begin alike still name different objects. Dots become dashes: Service names may not have
     them. */}}
{{- define "shop.prefix" -}}
{{- $release := .Release.Name -}}
{{- if regexMatch "^[0-9]" $release -}}
{{- fail (printf "release name %q starts with a digit, but the Service names made from it must start with a letter: choose a release name that does" $release) -}}
{{- end -}}
{{- $release = replace "." "-" $release -}}
{{- if gt (len $release) 41 -}}
{{- $release = printf "%s-%s" ($release | trunc 35 | trimSuffix "-") (sha256sum .Release.Name | trunc 5) -}}
{{- end -}}
{{ $release }}
{{- end }}

{{/* <prefix>-<part>: shop-order, shop-order-headless, shop-postgresql. `limit` (default 63,
     a DNS label's length) is the most the name may have where it is used; a longer name fails
     the render rather than the API server's check or, worse, a controller's label later. */}}
{{- define "shop.name" -}}
{{- $name := printf "%s-%s" (include "shop.prefix" .root) .part -}}
{{- $limit := .limit | default 63 -}}
{{- if gt (len $name) (int $limit) -}}
{{- fail (printf "the name %q has %d characters, more than the %d Kubernetes allows there: use a shorter release name, or a shorter service name in `services`" $name (len $name) (int $limit)) -}}
{{- end -}}
{{ $name }}
{{- end }}

{{- define "shop.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "shop.labels" -}}
{{ include "shop.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: shop
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ include "shop.chart" .root }}
{{- end }}

{{/* A service's settings: serviceDefaults overlaid with its own entry. Call with root, svc. */}}
{{- define "shop.serviceConfig" -}}
{{- $entry := index .root.Values.services .svc | default dict -}}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.serviceDefaults) (deepCopy $entry)) -}}
{{- end }}

{{/* Services that are enabled, in name order, as a YAML list. */}}
{{- define "shop.enabledServices" -}}
{{- $names := list -}}
{{- range $svc := keys .Values.services | sortAlpha -}}
{{- $cfg := include "shop.serviceConfig" (dict "root" $ "svc" $svc) | fromYaml -}}
{{- if $cfg.enabled }}{{ $names = append $names $svc }}{{ end -}}
{{- end -}}
{{- toYaml $names -}}
{{- end }}

{{/* The first enabled service, in name order: the one the chart's own pods and NOTES use
     when any service will do. */}}
{{- define "shop.firstService" -}}
{{- include "shop.enabledServices" . | fromYamlArray | first -}}
{{- end }}

{{/* The image the chart's own pods run (the secrets Job, the `helm test` pod): every service's
     image holds the runtime and the shop CLI, so the first enabled service's serves. */}}
{{- define "shop.toolsImage" -}}
{{ include "shop.image" (dict "root" . "svc" (include "shop.firstService" .)) }}
{{- end }}

{{/* Services whose `dependencies` name .svc: the callers its NetworkPolicy admits. */}}
{{- define "shop.callers" -}}
{{- $callers := list -}}
{{- range $other := include "shop.enabledServices" .root | fromYamlArray -}}
{{- $cfg := include "shop.serviceConfig" (dict "root" $.root "svc" $other) | fromYaml -}}
{{- if has $.svc $cfg.dependencies }}{{ $callers = append $callers $other }}{{ end -}}
{{- end -}}
{{- toYaml $callers -}}
{{- end }}

{{/* A service Deployment's replicas. Call with root, cfg and name (the Deployment's).
     Without autoscaling: the configured count. With it the HPA sets the count, yet the field
     must still be written: left out, an upgrade that turns autoscaling on drops the running
     count to the API's default of 1 until the HPA acts, and an install starts there. So it is
     the highest of minReplicas, the configured replicas and the count the live Deployment has
     now, which `lookup` reads on an install or upgrade (and which is nothing under
     `helm template` or a client-side dry run): an upgrade never takes pods away. */}}
{{- define "shop.replicas" -}}
{{- if .cfg.autoscaling.enabled -}}
{{- $live := lookup "apps/v1" "Deployment" .root.Release.Namespace .name -}}
{{ max (int .cfg.autoscaling.minReplicas) (int .cfg.replicas) (dig "spec" "replicas" 0 $live | int) }}
{{- else -}}
{{ .cfg.replicas }}
{{- end -}}
{{- end }}

{{- define "shop.image" -}}
{{- $image := .root.Values.image -}}
{{- $repo := printf "%s%s" $image.prefix .svc -}}
{{- if $image.registry }}{{ $repo = printf "%s/%s" (trimSuffix "/" $image.registry) $repo }}{{ end -}}
{{ $repo }}:{{ $image.tag | default .root.Chart.AppVersion }}
{{- end }}

{{/* The gRPC target clients dial: every ready pod behind the headless Service, round-robin. */}}
{{- define "shop.target" -}}
dns:///{{ include "shop.name" (dict "root" .root "part" (printf "%s-headless" .svc)) }}.{{ .root.Release.Namespace }}.svc.cluster.local:{{ .root.Values.ports.grpc }}
{{- end }}

{{/* Every DNS name of a service's certificate: the bare name clients verify against
     (grpc.ssl_target_name_override), the names of both Services, each short and qualified. */}}
{{- define "shop.dnsNames" -}}
{{- $ns := .root.Release.Namespace -}}
{{- $names := list -}}
{{- range $host := list .svc (printf "%s-headless" .svc) (include "shop.name" (dict "root" .root "part" .svc)) (include "shop.name" (dict "root" .root "part" (printf "%s-headless" .svc))) -}}
{{- $names = concat $names (list $host (printf "%s.%s" $host $ns) (printf "%s.%s.svc" $host $ns) (printf "%s.%s.svc.cluster.local" $host $ns)) -}}
{{- end -}}
{{- toYaml (append $names "localhost") -}}
{{- end }}

{{- define "shop.spiffeId" -}}
spiffe://shop/ns/{{ .root.Release.Namespace }}/sa/{{ .identity }}
{{- end }}

{{/* Secret holding an identity's ca.crt, tls.crt and tls.key. */}}
{{- define "shop.tlsSecret" -}}
{{- $default := include "shop.name" (dict "root" .root "part" (printf "%s-tls" .identity)) -}}
{{- if eq .root.Values.tls.mode "existing" -}}
{{ index .root.Values.tls.existingSecrets .identity | default $default }}
{{- else -}}
{{ $default }}
{{- end -}}
{{- end }}

{{/* The Secret of access token keys a service mounts: the private signing keys when it
     signs tokens (signsTokens), else the public verifying keys. */}}
{{- define "shop.tokenSecret" -}}
{{- $which := ternary "signing" "verifying" (.signs | default false) -}}
{{- $default := include "shop.name" (dict "root" .root "part" (printf "token-%s" $which)) -}}
{{- index .root.Values.tokens (printf "%sSecret" $which) | default $default -}}
{{- end }}

{{/* The pod's whole shutdown budget: the preStop sleep, then the process's own parts (the
     SHOP_SHUTDOWN_* variables of shop.shutdownEnv), then a margin for the process's exit. */}}
{{- define "shop.terminationGracePeriodSeconds" -}}
{{- $s := .Values.shutdown -}}
{{ add $s.preStopSleepSeconds $s.drainSeconds $s.graceSeconds $s.backgroundSeconds $s.flushSeconds $s.marginSeconds }}
{{- end }}

{{/* The process's parts of the shutdown budget, so that it keeps to what the pod allows. */}}
{{- define "shop.shutdownEnv" -}}
{{- $s := .Values.shutdown -}}
- name: SHOP_SHUTDOWN_DRAIN_SECONDS
  value: {{ $s.drainSeconds | quote }}
- name: SHOP_SHUTDOWN_GRACE_SECONDS
  value: {{ $s.graceSeconds | quote }}
- name: SHOP_SHUTDOWN_BACKGROUND_SECONDS
  value: {{ $s.backgroundSeconds | quote }}
- name: SHOP_SHUTDOWN_FLUSH_SECONDS
  value: {{ $s.flushSeconds | quote }}
{{- end }}

{{- define "shop.otlpEndpoint" -}}
{{- if .Values.tracing.endpoint -}}
{{ .Values.tracing.endpoint }}
{{- else if .Values.jaeger.enabled -}}
http://{{ include "shop.name" (dict "root" . "part" "jaeger") }}.{{ .Release.Namespace }}.svc.cluster.local:4317
{{- end -}}
{{- end }}

{{/* Database name and user of a service in the bundled PostgreSQL. */}}
{{- define "shop.dbName" -}}
shop_{{ . }}
{{- end }}

{{- define "shop.restrictedContainer" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Fails the render on combinations that cannot work; included by NOTES.txt and objects. */}}
{{- define "shop.validate" -}}
{{- $services := include "shop.enabledServices" . | fromYamlArray -}}
{{- range $svc := $services -}}
{{- $cfg := include "shop.serviceConfig" (dict "root" $ "svc" $svc) | fromYaml -}}
{{- range $dep := $cfg.dependencies -}}
{{- if not (has $dep $services) -}}
{{- fail (printf "services.%s.dependencies names %q, which is not an enabled service" $svc $dep) -}}
{{- end -}}
{{- end -}}
{{- if and $cfg.autoscaling.enabled (gt (int $cfg.autoscaling.minReplicas) (int $cfg.autoscaling.maxReplicas)) -}}
{{- fail (printf "services.%s.autoscaling: minReplicas is above maxReplicas" $svc) -}}
{{- end -}}
{{- if eq $.Values.database.mode "external" -}}
{{- $ref := include "shop.databaseSecret" (dict "root" $ "svc" $svc) | fromYaml -}}
{{- if not (and $ref.name $ref.key) -}}
{{- fail (printf "database.mode=external needs database.externalSecret (one Secret with a %s-url key per service) or database.externalSecrets.%s.name and .key" $svc $svc) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.tls.mode "existing") (not .Values.tls.existingSecrets) -}}
{{- fail "tls.mode=existing needs tls.existingSecrets (identity -> Secret name), e.g. from `shop certs init`" -}}
{{- end -}}
{{- if and .Values.tracing.endpoint .Values.jaeger.enabled -}}
{{- fail "set either tracing.endpoint or jaeger.enabled, not both: spans go to one place" -}}
{{- end -}}
{{- end }}


{{/*
Where a service's external database URL is: database.externalSecrets.<svc> when given, else the
one Secret database.externalSecret under the key <svc>-url (the convention, so a new service
needs no entry of its own). Yields {name, key} as YAML.
*/}}
{{- define "shop.databaseSecret" -}}
{{- $db := .root.Values.database -}}
{{- $own := index $db.externalSecrets .svc | default dict -}}
name: {{ $own.name | default $db.externalSecret | quote }}
key: {{ $own.key | default (printf "%s-url" .svc) | quote }}
{{- end -}}
