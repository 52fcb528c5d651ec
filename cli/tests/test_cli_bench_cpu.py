import re

from shop.order.v1 import order_pb2
from shop_cli import pidfiles
from shop_cli.bench.cpu import CpuMeter, CpuSample, CpuUsage, ServiceCpu, Unavailable, usage
from shop_cli.bench.report import cpu_report


def test_the_meter_reads_each_published_process_and_sums_a_services_replicas(tmp_path, children):
    burner, sleeper, replica = children("burn"), children("sleep"), children("sleep")
    pidfiles.publish(tmp_path, "order@127.0.0.1:1", burner.pid)
    pidfiles.publish(tmp_path, "user@127.0.0.1:2", sleeper.pid)
    pidfiles.publish(tmp_path, "user@127.0.0.2:2", replica.pid)
    meter = CpuMeter(tmp_path)
    meter.start()
    for child in (burner, sleeper, replica):
        child.run_to_done()
    measured = meter.stop()
    assert isinstance(measured, CpuUsage)
    by_service = {used.service: used for used in measured.services}
    assert [used.service for used in measured.services] == ["order", "user"]
    assert (by_service["order"].processes, by_service["user"].processes) == (1, 2)
    assert by_service["order"].seconds > by_service["user"].seconds
    assert measured.lost == []


def test_a_process_that_ends_within_the_window_is_named_not_counted(tmp_path, children):
    staying, leaving = children("sleep"), children("sleep")
    pidfiles.publish(tmp_path, "payment@127.0.0.1:3", staying.pid)
    pidfiles.publish(tmp_path, "payment@127.0.0.2:3", leaving.pid)
    meter = CpuMeter(tmp_path)
    meter.start()
    leaving.end()
    measured = meter.stop()
    assert isinstance(measured, CpuUsage)
    assert [(u.service, u.processes) for u in measured.services] == [("payment", 1)]
    assert measured.lost == ["payment@127.0.0.2:3"]


def test_without_running_published_processes_the_figures_are_unavailable(tmp_path, children):
    assert isinstance(CpuMeter(tmp_path).stop(), Unavailable)
    gone = children("sleep")
    gone.end()
    pidfiles.publish(tmp_path, "order@127.0.0.1:1", gone.pid)
    meter = CpuMeter(tmp_path)
    meter.start()
    measured = meter.stop()
    assert isinstance(measured, Unavailable)
    assert str(pidfiles.directory(tmp_path)) in measured.reason
    report = cpu_report(measured, [])
    assert "unavailable" in report


def test_usage_is_what_each_service_spent_between_two_samples():
    start = CpuSample(10.0, {"order@a:1": 1.0, "order@b:1": 2.0, "user@a:4": 0.5})
    end = CpuSample(12.5, {"order@a:1": 1.5, "order@b:1": 2.25, "user@a:4": 0.75})
    measured = usage(start, end)
    assert measured.window_seconds == 2.5
    assert [(u.service, u.processes, u.seconds) for u in measured.services] == [
        ("order", 2, 0.75),
        ("user", 1, 0.25),
    ]


def _order(status):
    return order_pb2.Order(status=status)


def test_the_report_divides_each_services_cpu_by_the_confirmed_orders():
    measured = CpuUsage(
        window_seconds=31.0,
        services=[ServiceCpu("order", 1, 0.5), ServiceCpu("user", 2, 0.1)],
        lost=[],
    )
    orders = [_order(order_pb2.Order.STATUS_CONFIRMED)] * 10
    orders.append(_order(order_pb2.Order.STATUS_FAILED))
    report = cpu_report(measured, orders)
    assert re.search(r"^cpu order\s+50\.0 ms per order", report, re.M)
    assert re.search(r"^cpu user\s+10\.0 ms per order .*2 processes", report, re.M)
    assert re.search(r"^cpu total\s+60\.0 ms per order", report, re.M)
    assert "31.0 s" in report
    assert "10 orders that became CONFIRMED" in report
    none_confirmed = cpu_report(measured, orders[-1:])
    assert re.search(r"^cpu total\s+- \(no order CONFIRMED\)", none_confirmed, re.M)
