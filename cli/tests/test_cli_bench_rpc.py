"""The parts of `shop bench rpc` that need no servers: the CPU accounting, the order of the
rounds, the OTLP sink's counts and the report's ratios."""

import sys

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from shop_cli.arguments import CliError
from shop_cli.bench.rpc import servers, sink
from shop_cli.bench.rpc.accounting import (
    Slice,
    figures,
    middle_half,
    ratio,
    round_ratios,
)
from shop_cli.bench.rpc.drive import Measured, Target, round_order
from shop_cli.bench.rpc.report import ratios_report
from shop_cli.bench.rpc.variants import COMPARISONS, VARIANTS, make_certificates
from shop_cli.suite import find_free_base_port


def test_a_variant_has_its_slices_cpu_and_calls():
    slices = [
        Slice(0, "health", "bare", 1.0, 0.25, 1000, 0),
        Slice(1, "health", "bare", 1.0, 0.35, 1200, 2),
    ]
    [(key, measured)] = figures(slices, {"bare": 0.6}).items()
    assert key == "health"
    assert (measured.calls, measured.failures, measured.seconds) == (2200, 2, 2.0)
    assert measured.cpu_seconds == pytest.approx(0.6)
    assert measured.cpu_per_call == pytest.approx(0.6 / 2200)
    assert measured.calls_per_second == pytest.approx(1100)


def test_what_a_server_spent_between_its_slices_goes_to_its_variants_by_their_share():
    slices = [
        Slice(0, "health-user", "user", 1.0, 0.2, 1000, 0),
        Slice(0, "getuser", "user", 1.0, 0.6, 200, 0),
        Slice(0, "getuser-traced", "traced", 1.0, 0.7, 200, 0),
    ]
    # user: 0.2 s more than in its slices, shared 1:3; traced: 0.3 s of exports after its slice.
    measured = figures(slices, {"user": 1.0, "traced": 1.0})
    assert measured["health-user"].cpu_seconds == pytest.approx(0.25)
    assert measured["getuser"].cpu_seconds == pytest.approx(0.75)
    assert measured["getuser-traced"].cpu_seconds == pytest.approx(1.0)
    assert list(measured) == ["health-user", "getuser", "getuser-traced"]


def test_a_comparison_is_also_worked_out_round_by_round_with_deferred_work_spread():
    slices = [
        Slice(0, "off", "user", 1.0, 0.20, 100, 0),
        Slice(0, "traced", "traced", 1.0, 0.20, 80, 0),
        Slice(1, "traced", "traced", 1.0, 0.20, 100, 0),
        Slice(1, "off", "user", 1.0, 0.25, 100, 0),
        Slice(2, "traced", "traced", 1.0, 0.10, 0, 3),  # no call answered: no ratio
        Slice(2, "off", "user", 1.0, 0.20, 100, 0),
    ]
    # The traced server did half as much again between its slices (span exports).
    by_round = round_ratios(slices, {"user": 0.65, "traced": 0.75}, "traced", "off")
    assert by_round == pytest.approx([(0.3 / 80) / (0.2 / 100), (0.3 / 100) / (0.25 / 100)])


def test_the_middle_half_lies_within_the_values():
    assert middle_half([1.0]) is None
    assert middle_half([1.0, 2.0]) == pytest.approx((1.25, 1.75))
    assert middle_half([5.0, 1.0, 3.0, 2.0, 4.0]) == pytest.approx((2.0, 4.0))


def test_a_ratio_with_nothing_below_it_is_none():
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(3.0, 0.0) is None


def test_each_round_starts_one_variant_later():
    targets = [Target(v, call=None, pid=0) for v in VARIANTS[:3]]  # type: ignore[arg-type]
    orders = [[t.variant.key for t in round_order(targets, i)] for i in range(4)]
    keys = [v.key for v in VARIANTS[:3]]
    assert orders[0] == keys
    assert orders[1] == [*keys[1:], keys[0]]
    assert orders[2] == [keys[2], *keys[:2]]
    assert orders[3] == orders[0]


def test_the_report_shows_every_comparison_as_cpu_and_rate_ratios():
    # Two rounds alike, each variant answering 100 * (its place + 1) calls for 0.1 s of CPU.
    slices = [
        Slice(r, v.key, v.server, 0.5, 0.05, 50 * (i + 1), 0)
        for r in range(2)
        for i, v in enumerate(VARIANTS)
    ]
    run_cpu = {v.server: 0.0 for v in VARIANTS}
    for s in slices:
        run_cpu[s.server] += s.cpu_seconds
    measured = figures(slices, run_cpu)
    lines = ratios_report(measured, Measured(slices, run_cpu)).splitlines()
    assert len(lines) == 1 + len(COMPARISONS)
    for comparison, line in zip(COMPARISONS, lines[1:], strict=True):
        top, bottom = measured[comparison.numerator], measured[comparison.denominator]
        cpu = top.cpu_per_call / bottom.cpu_per_call
        assert line.strip().startswith(comparison.title)
        assert (
            f" {cpu:.2f}x server CPU per call (rounds' middle half {cpu:.2f}x to {cpu:.2f}x)"
            in line
        )
        rate = top.calls_per_second / bottom.calls_per_second
        assert (f", {rate:.2f}x calls/s" in line) == comparison.with_rate


def _export_request(instance, spans):
    resource = resource_pb2.Resource(
        attributes=[
            common_pb2.KeyValue(
                key="service.instance.id", value=common_pb2.AnyValue(string_value=instance)
            )
        ]
    )
    scope = trace_pb2.ScopeSpans(spans=[trace_pb2.Span(name=f"s{i}") for i in range(spans)])
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[trace_pb2.ResourceSpans(resource=resource, scope_spans=[scope])]
    )


async def test_the_sink_counts_the_spans_each_process_exports():
    async with sink.receiving() as receiver:
        assert sink.exporting_to(receiver, "always_on")["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
            f"http://127.0.0.1:{receiver.port}"
        )
        async with grpc.aio.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
            export = channel.unary_unary(
                f"/{sink.TRACE_SERVICE}/Export",
                request_serializer=trace_service_pb2.ExportTraceServiceRequest.SerializeToString,
                response_deserializer=trace_service_pb2.ExportTraceServiceResponse.FromString,
            )
            await export(_export_request("user-traced", 3), timeout=5)
            await export(_export_request("user-sampled", 1), timeout=5)
            await export(_export_request("user-traced", 2), timeout=5)
    assert receiver.spans == {"user-traced": 5, "user-sampled": 1}


async def test_a_server_that_exits_before_serving_is_named_with_its_log(tmp_path):
    identity = make_certificates(tmp_path)
    crash = "import sys; print('cannot start: no such thing'); sys.exit(3)"
    plan = servers.ServerPlan(
        "broken", [sys.executable, "-c", crash], {}, find_free_base_port(count=1), 5.0
    )
    with pytest.raises(CliError) as failure:
        async with servers.running([plan], tmp_path, identity, ready_seconds=30):
            pass
    message = str(failure.value)
    assert message.startswith("the broken server exited with code 3 before it was ready")
    assert "cannot start: no such thing" in message
