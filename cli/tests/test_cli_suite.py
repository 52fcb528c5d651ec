import io
import os
import signal
import sys
import textwrap

import pytest

from shop_cli import pidfiles
from shop_cli.suite import Suite, SuiteError, find_free_base_port
from shop_grpc import registry
from shop_grpc.config import EXIT_MARGIN_SECONDS

# Stands in for `python -m shop_<service>`: serves grpc.health.v1 on SHOP_LISTEN_ADDRESS
# and stops with exit 0 on SIGTERM, or crashes at once when FAKE_CRASH names it.
FAKE_SERVICE = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    service = sys.argv[1]
    if os.environ.get("FAKE_CRASH") == service:
        print(f"boom: {service} cannot start")
        sys.exit(3)

    async def main():
        server = grpc.aio.server()
        servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        server.add_insecure_port(os.environ["SHOP_LISTEN_ADDRESS"])
        server.add_insecure_port(os.environ["SHOP_PROBE_ADDRESS"])
        await server.start()
        await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        print(f"serving {service} as {os.environ['SHOP_INSTANCE_ID']}")
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await server.stop(0)

    asyncio.run(main())
    """
)


@pytest.fixture
def fake_program(tmp_path):
    script = tmp_path / "fake_service.py"
    script.write_text(FAKE_SERVICE)
    return lambda service: [sys.executable, str(script), service]


def test_environment_configures_each_service_through_shop_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOP_DATABASE_URL", "postgresql://one-for-all")
    monkeypatch.setenv("INHERITED_SETTING", "kept")
    suite = Suite(
        tmp_path,
        base_port=41000,
        extra_env={"SHOP_LOG_LEVEL": "debug"},
        service_env={"payment": {"SHOP_DATABASE_URL": "postgresql://payment"}},
    )
    order = suite.environment("order")
    assert order["SHOP_LISTEN_ADDRESS"] == "127.0.0.1:41000"
    assert order["SHOP_INSTANCE_ID"] == "order@127.0.0.1:41000"
    assert order["SHOP_DATA_DIR"] == str(tmp_path.resolve())
    assert order["SHOP_INVENTORY_TARGET"] == "127.0.0.1:41001"
    assert order["SHOP_PAYMENT_TARGET"] == "127.0.0.1:41002"
    assert order["SHOP_USER_TARGET"] == "127.0.0.1:41003"
    assert order["SHOP_LOG_FORMAT"] == "json"
    assert order["SHOP_LOG_LEVEL"] == "debug"
    assert order["INHERITED_SETTING"] == "kept"
    assert "SHOP_DATABASE_URL" not in order
    assert suite.environment("payment")["SHOP_DATABASE_URL"] == "postgresql://payment"
    assert "SHOP_INVENTORY_TARGET" not in suite.environment("user")


def test_each_service_gets_its_shutdown_budget_before_it_is_killed(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("SHOP_SHUTDOWN_"):
            monkeypatch.delenv(name)
    suite = Suite(
        tmp_path,
        extra_env={"SHOP_SHUTDOWN_GRACE_SECONDS": "2", "SHOP_SHUTDOWN_FLUSH_SECONDS": "1"},
        service_env={"order": {"SHOP_SHUTDOWN_BACKGROUND_SECONDS": "9"}},
    )
    # drain 0 + grace 2 + background 5 (9 for order) + flush 1, and the exit margin.
    assert suite.stop_timeout(["user"]) == 8 + EXIT_MARGIN_SECONDS
    assert suite.stop_timeout() == 12 + EXIT_MARGIN_SECONDS


def test_endpoints_follow_the_base_port(tmp_path):
    suite = Suite(tmp_path, host="::1", base_port=50100)
    # Each keeps its default port's distance from the lowest one (order's 50051, then 50052…).
    expected = {
        spec.name: f"[::1]:{50100 + spec.default_port - 50051}"
        for spec in registry.services().values()
    }
    assert suite.endpoints() == expected
    assert suite.endpoints()["order"] == "[::1]:50100"
    assert suite.endpoints()["user"] == "[::1]:50103"


def test_start_wait_kill_restart_stop(tmp_path, fake_program):
    echo = io.StringIO()
    suite = Suite(tmp_path, base_port=find_free_base_port(), echo=echo, program=fake_program)
    suite.start()
    try:
        suite.wait_ready(timeout=30)
        assert suite.kill("payment") == -signal.SIGKILL
        assert suite.exited() == {"payment": -signal.SIGKILL}
        suite.restart("payment")
        suite.wait_ready(timeout=30, services=["payment"])
        assert suite.exited() == {}
    finally:
        codes = suite.stop(timeout=10)
    assert codes == dict.fromkeys(registry.names(), 0)
    log = suite.log_path("payment").read_text()
    assert log.count("serving payment as payment@127.0.0.1:") == 2
    assert "payment  | serving payment" in echo.getvalue()


def test_a_paused_service_answers_nothing_until_resumed(tmp_path, fake_program):
    suite = Suite(tmp_path, base_port=find_free_base_port(), program=fake_program)
    suite.start()
    try:
        suite.wait_ready(timeout=30)
        suite.pause("payment")
        with pytest.raises(SuiteError, match="payment was not SERVING"):
            suite.wait_ready(timeout=1, services=["payment"])
        suite.resume("payment")
        suite.wait_ready(timeout=30, services=["payment"])
    finally:
        codes = suite.stop(timeout=10)
    assert codes["payment"] == 0


def test_a_service_that_dies_is_named_with_its_log_tail(tmp_path, fake_program):
    suite = Suite(
        tmp_path,
        base_port=find_free_base_port(),
        extra_env={"FAKE_CRASH": "inventory"},
        program=fake_program,
    )
    suite.start()
    try:
        with pytest.raises(SuiteError) as failure:
            suite.wait_ready(timeout=30)
    finally:
        codes = suite.stop(timeout=10)
    message = str(failure.value)
    assert message.startswith("inventory exited with code 3 before it was ready")
    assert "boom: inventory cannot start" in message
    assert codes["inventory"] == 3


def test_context_manager_stops_everything(tmp_path, fake_program):
    with Suite(tmp_path, base_port=find_free_base_port(), program=fake_program) as suite:
        assert suite.exited() == {}
    assert set(suite.exited()) == set(registry.names())


def _command_line(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return cmdline.read().split(b"\0")[:-1]


def test_each_running_service_process_has_a_pid_file_until_it_is_reaped(tmp_path, fake_program):
    suite = Suite(tmp_path, base_port=find_free_base_port(), program=fake_program)
    suite.start()
    try:
        suite.wait_ready(timeout=30)
        running = pidfiles.published(tmp_path)
        assert set(running) == {suite.instance(name) for name in registry.names()}
        for instance, pid in running.items():
            # The process the file names is the one running that service.
            assert _command_line(pid)[-1] == pidfiles.service_of(instance).encode()
        payment = suite.instance("payment")
        suite.kill("payment")
        assert payment not in pidfiles.published(tmp_path)
        suite.restart("payment")
        restarted = pidfiles.published(tmp_path)[payment]
        assert restarted != running[payment]
        assert _command_line(restarted)[-1] == b"payment"
    finally:
        suite.stop(timeout=10)
    assert pidfiles.published(tmp_path) == {}
    assert list(pidfiles.directory(tmp_path).iterdir()) == []
