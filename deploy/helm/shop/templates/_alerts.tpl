{{/* The alert rules (a PrometheusRule's spec): CreateOrder's availability and latency SLOs as
     multi-window, multi-burn-rate alerts (the Site Reliability Workbook, "Alerting on SLOs":
     2 % of a 30-day budget in 1 h or 5 % in 6 h pages, 10 % in 3 days opens a ticket), orders
     stuck with saga work left, and services no longer scraped. Everything is scoped to the
     release's namespace; jobs are the services' names (the ServiceMonitor's jobLabel). */}}
{{- define "shop.metrics.ruleGroups" -}}
{{- $m := .Values.metrics -}}
{{- $ns := .Release.Namespace -}}
{{- $services := include "shop.enabledServices" . | fromYamlArray -}}
{{- $call := printf "namespace=%q,grpc_service=\"shop.order.v1.OrderService\",grpc_method=\"CreateOrder\"" $ns -}}
{{- /* A bucket's le as the Python client writes it (1.0, 0.25): the query must match it. */ -}}
{{- $le := toString $m.slo.latencySeconds -}}
{{- if not (contains "." $le) }}{{ $le = printf "%s.0" $le }}{{ end -}}
{{- $windows := list "5m" "30m" "1h" "2h" "6h" "1d" "3d" -}}
{{- $slos := list (dict "name" "errors" "alert" "ShopCreateOrderErrorBudgetBurn" "target" $m.slo.availability "what" "answered with a server error (Unknown, DeadlineExceeded, Unimplemented, Internal, Unavailable, DataLoss)") (dict "name" "slow" "alert" "ShopCreateOrderLatencyBudgetBurn" "target" $m.slo.latency "what" (printf "slower than %ss" (toString $m.slo.latencySeconds))) -}}
groups:
  - name: shop.create-order.slo
    rules:
      {{- range $w := $windows }}
      - record: shop:create_order_errors:ratio_rate{{ $w }}
        expr: |
          sum by (namespace) (rate(grpc_server_handled_total{ {{- $call }},grpc_code=~"Unknown|DeadlineExceeded|Unimplemented|Internal|Unavailable|DataLoss"}[{{ $w }}]))
          /
          sum by (namespace) (rate(grpc_server_handled_total{ {{- $call }}}[{{ $w }}]))
      - record: shop:create_order_slow:ratio_rate{{ $w }}
        expr: |
          1 - (
            sum by (namespace) (rate(grpc_server_handling_seconds_bucket{ {{- $call }},le="{{ $le }}"}[{{ $w }}]))
            /
            sum by (namespace) (rate(grpc_server_handling_seconds_count{ {{- $call }}}[{{ $w }}]))
          )
      {{- end }}
      {{- range $slo := $slos }}
      {{- $budget := printf "%.6g" (subf 1.0 $slo.target) }}
      {{- $percent := printf "%.6g" (mulf (subf 1.0 $slo.target) 100.0) }}
      - alert: {{ $slo.alert }}
        expr: |
          (
            shop:create_order_{{ $slo.name }}:ratio_rate1h > (14.4 * {{ $budget }})
            and shop:create_order_{{ $slo.name }}:ratio_rate5m > (14.4 * {{ $budget }})
          )
          or
          (
            shop:create_order_{{ $slo.name }}:ratio_rate6h > (6 * {{ $budget }})
            and shop:create_order_{{ $slo.name }}:ratio_rate30m > (6 * {{ $budget }})
          )
        labels:
          severity: page
        annotations:
          summary: CreateOrder is spending its error budget fast
          description: >-
            In {{ "{{" }} $labels.namespace {{ "}}" }}, {{ "{{" }} $value | humanizePercentage {{ "}}" }} of
            CreateOrder calls were {{ $slo.what }} over the last hour or six; the SLO allows
            {{ $percent }} % over 30 days, and at this rate the month's budget is gone within days.
      - alert: {{ $slo.alert }}
        expr: |
          (
            shop:create_order_{{ $slo.name }}:ratio_rate1d > (3 * {{ $budget }})
            and shop:create_order_{{ $slo.name }}:ratio_rate2h > (3 * {{ $budget }})
          )
          or
          (
            shop:create_order_{{ $slo.name }}:ratio_rate3d > {{ $budget }}
            and shop:create_order_{{ $slo.name }}:ratio_rate6h > {{ $budget }}
          )
        labels:
          severity: ticket
        annotations:
          summary: CreateOrder is spending its error budget faster than it lasts
          description: >-
            In {{ "{{" }} $labels.namespace {{ "}}" }}, {{ "{{" }} $value | humanizePercentage {{ "}}" }} of
            CreateOrder calls were {{ $slo.what }} over the last day or three; the SLO allows
            {{ $percent }} % over 30 days.
      {{- end }}
  - name: shop.orders
    rules:
      - alert: ShopOrdersStuck
        expr: max by (namespace) (shop_orders_unfinished_oldest_age_seconds{namespace="{{ $ns }}"}) > {{ $m.unfinishedOrderAgeSeconds }}
        for: 5m
        labels:
          severity: page
        annotations:
          summary: Orders are not reaching a final status
          description: >-
            In {{ "{{" }} $labels.namespace {{ "}}" }} the oldest order with saga work left was placed
            {{ "{{" }} $value | humanizeDuration {{ "}}" }} ago. Recovery is not moving it: look for a dependency
            that keeps failing (shop_saga_step_retries_total) or replicas that cannot reach the database.
  - name: shop.scrape
    rules:
      - alert: ShopMetricsTargetDown
        expr: up{namespace="{{ $ns }}",job=~"{{ join "|" $services }}"} == 0
        for: 5m
        labels:
          severity: ticket
        annotations:
          summary: A shop pod's metrics cannot be scraped
          description: >-
            {{ "{{" }} $labels.instance {{ "}}" }} ({{ "{{" }} $labels.job {{ "}}" }}) in {{ "{{" }} $labels.namespace {{ "}}" }} has not answered a scrape for 5 minutes.
      {{- range $svc := $services }}
      - alert: ShopMetricsAbsent
        expr: absent(up{namespace="{{ $ns }}",job="{{ $svc }}"})
        for: 10m
        labels:
          severity: ticket
          job: {{ $svc }}
          namespace: {{ $ns }}
        annotations:
          summary: The {{ $svc }} service is not being scraped at all
          description: >-
            No target of the {{ $svc }} service has been scraped in {{ $ns }} for 10 minutes: its pods are
            gone, or the ServiceMonitor no longer finds them.
      {{- end }}
{{- end }}
