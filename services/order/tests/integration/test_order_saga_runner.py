"""The saga against fake services on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from shop_grpc.errors import Internal, InvalidArgument, PermissionDenied, Unavailable
from shop_grpc.pagination import PageTokens
from shop_grpc.principal import ANYONE
from shop_grpc.storage import utcnow
from shop_grpc.testing import MetricChanges
from shop_grpc.testing.metrics import samples
from shop_order.adapters.orm import orders as orders_table
from shop_order.adapters.unit_of_work import SqlUnitOfWork
from shop_order.domain.model import Lease, Order, OrderLine, Status, Step
from shop_order.service_layer import orders
from shop_order.service_layer.ports import Card, Dependencies, Reservation
from shop_order.service_layer.saga_runner import SagaRunner, SagaSettings

TOKENS = PageTokens(bytes(32))


async def place(
    runner: SagaRunner, world, *, user: str = "alice", lines=None, card=None, request_id: str = ""
) -> Order:
    lines = lines or [OrderLine("widget", 2)]
    return await orders.place_order(
        runner.uow,
        world.payments,
        runner,
        user_id=user,
        lines=lines,
        card=card or world.approved,
        request_id=request_id,
        # Stands in for the entrypoint's fingerprint of the request: same content, same text.
        fingerprint=hashlib.sha256(repr((user, lines)).encode()).hexdigest(),
        caller=ANYONE,
    )


@contextlib.asynccontextmanager
async def recovering(runner: SagaRunner) -> AsyncIterator[None]:
    """Runs the runner's recovery loop for the block, then stops the runner."""
    loop = asyncio.create_task(runner.recover_forever())
    try:
        yield
    finally:
        loop.cancel()
        await runner.stop()


async def final(runner: SagaRunner, order_id: str, wait: float = 5.0) -> Order:
    order = await orders.wait_until_final(runner.uow, runner, order_id, wait)
    assert order.is_final, f"order stuck at {order.step}"
    return order


async def test_a_placed_order_is_confirmed_charged_and_its_stock_sold(new_runner, world):
    runner = new_runner()
    order = await final(runner, (await place(runner, world)).order_id)
    assert order.status is Status.CONFIRMED
    assert order.total is not None and order.total.amount_minor == 2500
    assert world.payments.net_charged(order.order_id) == 2500
    assert (world.inventory.available["widget"], world.inventory.sold["widget"]) == (8, 2)


async def test_a_wait_on_the_driving_replica_gets_the_order_as_stored_without_reading_it(
    new_runner, world
):
    runner = new_runner()
    stored = runner.uow
    reads = 0

    def counting_reads(*, readonly: bool = False) -> SqlUnitOfWork:
        nonlocal reads
        reads += readonly
        return stored(readonly=readonly)

    placed = await place(runner, world)
    order = await orders.wait_until_final(counting_reads, runner, placed.order_id, 5.0)

    assert order.status is Status.CONFIRMED
    assert reads == 0
    assert order == await orders.get_order(stored, placed.order_id, ANYONE)


async def test_out_of_stock_fails_with_a_reason_and_changes_nothing(new_runner, world):
    runner = new_runner()
    order = await place(runner, world, lines=[OrderLine("gadget", 6)])
    order = await final(runner, order.order_id)
    assert order.status is Status.FAILED
    assert "out of stock" in order.failure_reason and "gadget" in order.failure_reason
    assert world.inventory.available["gadget"] == 5
    assert world.payments.charged == {}


async def test_a_declined_card_fails_the_order_and_releases_its_stock(new_runner, world):
    runner = new_runner()
    order = await place(runner, world, card=world.declined)
    order = await final(runner, order.order_id)
    assert order.status is Status.FAILED
    assert order.failure_reason == "payment declined: card_declined"
    assert world.inventory.reservations[order.order_id][0] == "RELEASED"
    assert world.inventory.available["widget"] == 10
    assert world.payments.net_charged(order.order_id) == 0


async def test_an_unknown_user_fails_before_anything_is_reserved(new_runner, world):
    runner = new_runner()
    unknown = str(uuid.uuid4())
    order = await final(runner, (await place(runner, world, user=unknown)).order_id)
    assert order.status is Status.FAILED
    assert order.failure_reason == f"user {unknown} does not exist"
    assert "reserve" not in world.faults.calls


async def test_a_bad_card_is_rejected_before_anything_is_stored(new_runner, world):
    runner = new_runner()
    with pytest.raises(InvalidArgument):
        await place(runner, world, card=Card("not-a-number", 12, 2040, "123"))
    found = (await orders.list_orders(runner.uow, TOKENS, "alice", 10, "", ANYONE)).items
    assert found == []


async def test_a_retried_request_returns_the_same_order_and_charges_once(new_runner, world):
    runner = new_runner()
    first = await place(runner, world, request_id="req-1")
    again = await place(runner, world, request_id="req-1")
    assert again.order_id == first.order_id
    await final(runner, first.order_id)
    assert await place(runner, world, request_id="req-1") == await orders.get_order(
        runner.uow, first.order_id, ANYONE
    )
    assert len(world.payments.payments) == 1
    assert world.faults.calls.count("create_payment_method") == 1


async def test_the_same_request_sent_twice_at_once_places_one_order(new_runner, world):
    runner = new_runner()
    # Both look for the request_id before either stores it; the second to store loses the
    # unique key and answers with the winner's order.
    first, second = await asyncio.gather(
        place(runner, world, request_id="req-1"), place(runner, world, request_id="req-1")
    )
    assert second.order_id == first.order_id
    await final(runner, first.order_id)
    assert len((await orders.list_orders(runner.uow, TOKENS, "alice", 10, "", ANYONE)).items) == 1
    assert len(world.payments.payments) == 1


async def test_unreachable_dependencies_are_retried_until_they_answer(new_runner, world):
    world.faults.unavailable.update(reserve=2, charge=1, commit=1)
    runner = new_runner()
    order = await final(runner, (await place(runner, world)).order_id)
    assert order.status is Status.CONFIRMED
    assert world.payments.net_charged(order.order_id) == 2500


async def test_a_crash_mid_charge_is_recovered_by_the_next_boot_without_double_charging(
    new_runner, world
):
    world.faults.hang["charge"] = asyncio.Event()
    crashed = new_runner(owner="order-a")
    order = await place(crashed, world)
    while "charge" not in world.faults.calls:
        await asyncio.sleep(0.01)
    await crashed.stop()  # the process dies while the charge is in flight

    world.faults.hang["charge"].set()
    rebooted = new_runner(owner="order-a")
    assert await rebooted.recover_once() == [order.order_id]
    order = await final(rebooted, order.order_id)
    assert order.status is Status.CONFIRMED
    assert world.payments.net_charged(order.order_id) == 2500
    assert world.inventory.sold["widget"] == 2


async def test_another_replica_takes_over_once_the_lease_lapses(new_runner, world):
    short = SagaSettings(lease_seconds=1, recovery_interval_seconds=0.05, give_up_seconds=30)
    world.faults.hang["reserve"] = asyncio.Event()
    crashed = new_runner(owner="order-a", settings=short)
    order = await place(crashed, world)
    while "reserve" not in world.faults.calls:
        await asyncio.sleep(0.01)
    await crashed.stop()
    world.faults.hang["reserve"].set()

    other = new_runner(owner="order-b", settings=short)
    assert await other.recover_once() == []  # the lease is still live
    await asyncio.sleep(1.1)
    assert await other.recover_once() == [order.order_id]
    assert (await final(other, order.order_id)).status is Status.CONFIRMED


async def test_replicas_recovering_at_once_never_drive_the_same_order(new_runner, world):
    short = SagaSettings(lease_seconds=0.5, recovery_interval_seconds=0.05, give_up_seconds=30)
    world.faults.hang["get_user"] = asyncio.Event()
    crashed = new_runner(owner="order-a", settings=short)
    placed = [await place(crashed, world, lines=[OrderLine("widget", 1)]) for _ in range(6)]
    await crashed.stop()
    world.faults.hang["get_user"].set()
    await asyncio.sleep(0.6)

    b, c = new_runner(owner="order-b", settings=short), new_runner(owner="order-c", settings=short)
    claimed_b, claimed_c = await asyncio.gather(b.recover_once(), c.recover_once())
    assert not set(claimed_b) & set(claimed_c)
    assert set(claimed_b) | set(claimed_c) == {o.order_id for o in placed}
    for order in placed:
        assert (await final(b, order.order_id)).status is Status.CONFIRMED
    assert world.inventory.sold["widget"] == 6


async def test_cancelling_a_confirmed_order_refunds_it_and_returns_the_stock(new_runner, world):
    runner = new_runner()
    order = await final(runner, (await place(runner, world)).order_id)
    await orders.cancel_order(runner.uow, runner, order.order_id, ANYONE)
    order = await final(runner, order.order_id)
    assert order.status is Status.CANCELLED
    assert world.payments.net_charged(order.order_id) == 0
    assert (world.inventory.available["widget"], world.inventory.sold["widget"]) == (10, 0)


async def test_cancelling_an_order_in_flight_stops_it_before_the_charge(new_runner, world):
    world.faults.hang["reserve"] = asyncio.Event()
    runner = new_runner()
    order = await place(runner, world)
    while "reserve" not in world.faults.calls:
        await asyncio.sleep(0.01)
    await orders.cancel_order(runner.uow, runner, order.order_id, ANYONE)
    world.faults.hang["reserve"].set()
    order = await final(runner, order.order_id)
    assert order.status is Status.CANCELLED
    assert "charge" not in world.faults.calls
    assert world.inventory.available["widget"] == 10


async def test_a_lapsed_reservation_fails_the_order_and_refunds_it(new_runner, world):
    runner = new_runner()
    world.faults.hang["charge"] = asyncio.Event()
    order = await place(runner, world)
    while "charge" not in world.faults.calls:
        await asyncio.sleep(0.01)
    world.inventory.reservations[order.order_id] = ("EXPIRED", [])
    world.faults.hang["charge"].set()
    order = await final(runner, order.order_id)
    assert order.status is Status.FAILED
    assert "lapsed" in order.failure_reason
    assert world.payments.net_charged(order.order_id) == 0


async def test_watch_streams_every_step_and_ends_when_final(new_runner, world):
    runner = new_runner()
    world.faults.hang["get_user"] = asyncio.Event()
    order = await place(runner, world)
    seen: list[Order] = []

    async def watch() -> None:
        async for update in orders.watch_order(runner.uow, runner.signal, order.order_id, ANYONE):
            seen.append(update)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.1)
    world.faults.hang["get_user"].set()
    await asyncio.wait_for(watcher, 5)
    assert seen[0].status is Status.PENDING
    assert seen[-1].status is Status.CONFIRMED and seen[-1].is_final
    assert len(seen) >= 3


async def test_list_orders_pages_newest_first(new_runner, world):
    runner = new_runner()
    placed = [await place(runner, world, lines=[OrderLine("widget", 1)]) for _ in range(5)]
    first = await orders.list_orders(runner.uow, TOKENS, "alice", 2, "", ANYONE)
    second = await orders.list_orders(runner.uow, TOKENS, "alice", 2, first.next_page_token, ANYONE)
    third = await orders.list_orders(runner.uow, TOKENS, "alice", 2, second.next_page_token, ANYONE)
    page1, page2, page3 = first.items, second.items, third.items
    token3 = third.next_page_token
    ids = [o.order_id for o in page1 + page2 + page3]
    assert ids == [o.order_id for o in reversed(placed)]
    assert token3 == ""
    await runner.stop()


async def test_a_cancel_that_lands_while_the_order_confirms_still_cancels_it(new_runner, world):
    world.faults.hang["commit"] = asyncio.Event()
    runner = new_runner()
    order = await place(runner, world)
    while "commit" not in world.faults.calls:
        await asyncio.sleep(0.01)
    await orders.cancel_order(runner.uow, runner, order.order_id, ANYONE)
    world.faults.hang["commit"].set()
    order = await final(runner, order.order_id)
    assert order.status is Status.CANCELLED
    assert world.payments.net_charged(order.order_id) == 0
    assert (world.inventory.available["widget"], world.inventory.sold["widget"]) == (10, 0)


async def test_a_user_id_the_user_service_refuses_fails_the_order_at_once(new_runner, world):
    # The example: user_id "bob" is not a user id, and the user service says so.
    runner = new_runner()
    order = await final(runner, (await place(runner, world, user="bob")).order_id, wait=2.0)
    assert order.status is Status.FAILED
    assert order.failure_reason == "user check refused: INVALID_ARGUMENT user_id: must be a UUID"
    assert world.faults.calls.count("get_user") == 1
    assert "reserve" not in world.faults.calls
    assert world.payments.charged == {}
    assert world.inventory.available["widget"] == 10


async def test_a_dependencys_internal_error_fails_the_order_and_undoes_it(new_runner, world):
    world.faults.failing["reserve"] = Internal("INTERNAL: internal error (id 5f3a)")
    runner = new_runner()
    order = await final(runner, (await place(runner, world)).order_id, wait=2.0)
    assert order.status is Status.FAILED
    assert order.failure_reason == ("stock reservation refused: INTERNAL internal error (id 5f3a)")
    assert world.faults.calls.count("reserve") == 1
    # The reserve may have landed before it failed: undoing it leaves nothing held.
    assert world.inventory.reservations[order.order_id][0] == "RELEASED"
    assert world.inventory.available["widget"] == 10
    assert world.payments.charged == {}


GIVE_UP_FAST = SagaSettings(
    lease_seconds=30,
    recovery_interval_seconds=0.05,
    give_up_seconds=0.5,
    retry_initial_seconds=0.02,
    retry_max_seconds=0.1,
)


async def test_a_dependency_unreachable_past_the_give_up_time_fails_the_order(new_runner, world):
    world.faults.failing["reserve"] = Unavailable("UNAVAILABLE: connection refused")
    runner = new_runner(settings=GIVE_UP_FAST)
    async with recovering(runner):
        order = await final(runner, (await place(runner, world)).order_id, wait=3.0)
    assert order.status is Status.FAILED
    assert order.failure_reason == (
        "gave up after 0.5 s: stock reservation failed: UNAVAILABLE connection refused"
    )
    assert world.faults.calls.count("reserve") > 1
    assert world.inventory.available["widget"] == 10


async def test_a_bug_in_a_forward_step_gives_up_too_without_telling_its_details(new_runner, world):
    world.faults.failing["get_user"] = KeyError("secret-column")
    runner = new_runner(settings=GIVE_UP_FAST)
    async with recovering(runner):
        order = await final(runner, (await place(runner, world)).order_id, wait=3.0)
    assert order.status is Status.FAILED
    assert order.failure_reason == "gave up after 0.5 s: user check failed: internal error"


async def test_an_undo_step_refused_keeps_trying_slowly_and_never_gives_up(new_runner, world):
    world.faults.failing["release"] = PermissionDenied("order may not release stock")
    runner = new_runner(settings=GIVE_UP_FAST)
    async with recovering(runner):
        order = await place(runner, world, card=world.declined)
        await asyncio.sleep(1.5)  # three times the give-up time

        stuck = await orders.get_order(runner.uow, order.order_id, ANYONE)
        assert (stuck.status, stuck.step) == (Status.PENDING, Step.RELEASING_STOCK)
        # Backing off (at least 0.05 s apart once capped), not spinning: at most 30 tries.
        assert 3 <= world.faults.calls.count("release") <= 30
        del world.faults.failing["release"]
        order = await final(runner, order.order_id, wait=3.0)
    assert order.status is Status.FAILED
    assert world.inventory.available["widget"] == 10


async def _insert(runner: SagaRunner, placed: list[Order], lease: Lease) -> None:
    """Stores orders as a replica holding `lease` left them."""
    async with runner.uow() as tx:
        for order in placed:
            await tx.orders.add(order, lease, utcnow())
        await tx.commit()


async def _fewest_attempts(runner: SagaRunner, step: Step) -> int:
    async with runner.uow(readonly=True) as tx:
        query = select(func.min(orders_table.c.attempts)).where(orders_table.c.step == step)
        return int((await tx.orders.session.execute(query)).scalar_one())


async def _killed_mid_charge(world, n: int) -> Order:
    """An order whose driver died after writing `charge_attempted`; half of the charges landed."""
    order = Order(
        str(uuid.uuid4()),
        "alice",
        [OrderLine("widget", 1)],
        "",
        f"real-{n}",
        step=Step.CHARGING_PAYMENT,
        charge_attempted=True,
    )
    order.payment_method_id = await world.payments.create_payment_method(
        world.approved, order.request_id
    )
    reservation = await world.inventory.reserve(order.order_id, order.lines)
    order.lines, order.total = reservation.lines, reservation.total
    if n % 2:
        await world.payments.charge(order.order_id, order.payment_method_id, order.total)
    return order


async def test_orders_that_keep_failing_never_hold_back_orders_that_are_due(new_runner, world):
    # The case: hundreds of orders whose dependency keeps failing, and real orders
    # whose replica was killed mid-charge; those must finish once their lease lapses.
    settings = SagaSettings(
        lease_seconds=1, recovery_interval_seconds=0.1, give_up_seconds=600, retry_max_seconds=5
    )
    world.faults.failing["get_user"] = Unavailable("UNAVAILABLE: user service down")
    world.inventory.available["widget"] = 1000
    live = new_runner(owner="order-a", settings=settings)
    # Failing for a while already: five tries each, due again over the next 4 s.
    async with live.uow() as tx:
        for n in range(300):
            order = Order(str(uuid.uuid4()), "alice", [OrderLine("widget", 1)], "pm", f"f{n}")
            order.step, order.attempts = Step.CHECKING_USER, 5
            await tx.orders.add(order, Lease("order-gone", "boot-gone", n / 300 * 4), utcnow())
        await tx.commit()

    async with recovering(live):
        real = [await _killed_mid_charge(world, n) for n in range(10)]
        await _insert(live, real, Lease("order-b", "boot-killed", settings.lease_seconds))
        loop = asyncio.get_running_loop()
        started = loop.time()
        done = [await final(live, order.order_id, wait=10) for order in real]
        elapsed = loop.time() - started
        # Meanwhile the failing ones were tried again, and pushed further back.
        assert await _fewest_attempts(live, Step.CHECKING_USER) >= 5
        assert world.faults.calls.count("get_user") >= 50

    assert {order.status for order in done} == {Status.CONFIRMED}
    assert all(world.payments.net_charged(o.order_id) == 1250 for o in real)
    # Due once the lease lapses, claimed by the next scan; a second more for the drives
    # themselves on a busy machine. Without fairness they waited behind the failing ones.
    assert elapsed < settings.lease_seconds + settings.recovery_interval_seconds + 1.0


async def test_an_order_that_keeps_failing_is_tried_less_and_less_often_up_to_a_cap(
    new_runner, world
):
    settings = SagaSettings(
        lease_seconds=30,
        recovery_interval_seconds=0.02,
        give_up_seconds=600,
        retry_initial_seconds=0.02,
        retry_max_seconds=0.32,
    )
    world.faults.failing["get_user"] = Unavailable("UNAVAILABLE: user service down")
    runner = new_runner(settings=settings)
    async with recovering(runner):
        order = await place(runner, world)
        async with asyncio.timeout(10):
            while len(world.faults.times.get("get_user", [])) < 10:
                await asyncio.sleep(0.05)

    times = world.faults.times["get_user"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # Each wait is drawn from the upper half of a ceiling that doubles from 0.02 s up to 0.32 s,
    # across drives: the count of failed tries is kept with the order.
    for tries, gap in enumerate(gaps, start=1):
        assert gap >= min(0.02 * 2 ** (tries - 1), 0.32) / 2
    assert gaps[-1] < 1.0  # capped: doubling on would have made it 5 s
    assert (await orders.get_order(runner.uow, order.order_id, ANYONE)).attempts >= 8


async def test_a_cancel_does_not_wait_out_the_backoff_of_a_failing_order(new_runner, world):
    settings = SagaSettings(
        lease_seconds=30,
        recovery_interval_seconds=0.05,
        give_up_seconds=600,
        quick_retries=0,
        retry_initial_seconds=30,
    )
    world.faults.failing["get_user"] = Unavailable("UNAVAILABLE: user service down")
    runner = new_runner(settings=settings)
    changes = MetricChanges()
    async with recovering(runner):
        order = await place(runner, world)
        while "get_user" not in world.faults.calls:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # handed back, next try in 15 to 30 s
        await orders.cancel_order(runner.uow, runner, order.order_id, ANYONE)
        order = await final(runner, order.order_id, wait=2.0)
    assert order.status is Status.CANCELLED
    # Cancelled before anything was held: the cancel's own write made it final, and counted.
    assert changes.of("shop_orders_finished_total", status="CANCELLED") == 1


async def test_a_cancel_that_lands_while_a_failing_order_is_handed_back_is_acted_on_at_once(
    new_runner, world
):
    # The cancel commits after the step failed and before the drive hands the order back
    # with its backoff: the hand-back must not make the cancel wait that backoff out.
    settings = SagaSettings(lease_seconds=30, recovery_interval_seconds=0.05, give_up_seconds=600)
    runner = new_runner(settings=settings)
    order = Order(str(uuid.uuid4()), "alice", [OrderLine("widget", 1)], "pm", "handed-back")
    order.step = Step.CHECKING_USER
    async with runner.uow() as tx:
        await tx.orders.add(order, runner.lease, utcnow())
        await tx.commit()
    async with runner.uow() as tx:  # CancelOrder on an order a drive holds
        cancelling = await tx.orders.get(order.order_id)
        assert cancelling is not None
        cancelling.cancel_requested = True
        await tx.orders.save_unleased(cancelling, utcnow())
        await tx.commit()
    order.attempts = 1
    async with runner.uow() as tx:  # the drive hands the order back, due again in 30 s
        await tx.orders.release(order, runner.lease, utcnow() + timedelta(seconds=30))
        await tx.commit()

    async with recovering(runner):
        order = await final(runner, order.order_id, wait=2.0)

    assert order.status is Status.CANCELLED
    assert "get_user" not in world.faults.calls


LEASE = SagaSettings(lease_seconds=0.6, recovery_interval_seconds=0.05, give_up_seconds=30)


class DatabaseGate:
    """One replica's way to its database, which the test can close: the replica stalls as
    a paused process, or one cut off from the database, does."""

    def __init__(self, uow: Callable[..., SqlUnitOfWork]) -> None:
        self.uow = uow
        self.open = asyncio.Event()
        self.open.set()
        self.broken = False

    def __call__(self, *, readonly: bool = False) -> _Gated:
        return _Gated(self.uow(readonly=readonly), self)


class _Gated:
    def __init__(self, inner: SqlUnitOfWork, gate: DatabaseGate) -> None:
        self.inner, self.gate = inner, gate

    async def __aenter__(self) -> SqlUnitOfWork:
        await self.gate.open.wait()
        if self.gate.broken:
            raise ConnectionRefusedError("the database is out of reach")
        return await self.inner.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self.inner.__aexit__(*exc)


async def _until(condition: Callable[[], bool], seconds: float = 3.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_replica_waiting_on_a_held_call_keeps_the_order_from_other_replicas(
    new_runner, world
):
    world.faults.hang["reserve"] = asyncio.Event()
    a, b = new_runner(owner="order-a", settings=LEASE), new_runner(owner="order-b", settings=LEASE)
    order = await place(a, world)
    await _until(lambda: "reserve" in world.faults.calls)

    for _ in range(20):  # 2 s, more than three leases: a renews its lease while it waits
        assert await b.recover_once() == []
        await asyncio.sleep(0.1)
    world.faults.hang["reserve"].set()

    assert (await final(a, order.order_id)).status is Status.CONFIRMED
    assert world.faults.calls.count("reserve") == 1
    assert world.inventory.available["widget"] == 8


async def test_a_replica_that_lost_its_lease_cancels_its_call_and_its_late_reserve_holds_nothing(
    new_runner, world
):
    # The case: A waits on a slow ReserveItems while its lease lapses; B takes the
    # order over, applies a pending cancel and releases the stock; then A's reserve lands.
    world.faults.hang["reserve"] = asyncio.Event()
    a, b = new_runner(owner="order-a", settings=LEASE), new_runner(owner="order-b", settings=LEASE)
    a.uow = gate = DatabaseGate(a.uow)
    order = await place(a, world)
    await _until(lambda: "reserve" in world.faults.calls)

    gate.open.clear()  # A stalls; its lease lapses
    await asyncio.sleep(LEASE.lease_seconds + 0.1)
    await orders.cancel_order(b.uow, b, order.order_id, ANYONE)
    cancelled = await final(b, order.order_id)
    gate.open.set()  # A wakes up, finds the lease gone, and stops
    await _until(lambda: not a._tasks, seconds=1.0)
    world.faults.hang["reserve"].set()  # only now does A's reserve reach the inventory
    await asyncio.gather(*world.faults.landing, return_exceptions=True)

    assert cancelled.status is Status.CANCELLED
    assert (await orders.get_order(b.uow, order.order_id, ANYONE)).status is Status.CANCELLED
    assert world.inventory.reservations[order.order_id] == ("RELEASED", [])
    assert world.inventory.available["widget"] == 10
    assert world.faults.calls.count("reserve") == 1  # nobody reserved again


async def test_a_replica_that_cannot_renew_its_lease_stops_and_another_finishes_the_order(
    new_runner, world
):
    world.faults.hang["reserve"] = asyncio.Event()
    a, b = new_runner(owner="order-a", settings=LEASE), new_runner(owner="order-b", settings=LEASE)
    a.uow = gate = DatabaseGate(a.uow)
    order = await place(a, world)
    await _until(lambda: "reserve" in world.faults.calls)

    gate.broken = True  # A cannot tell whether it still holds the lease: it must stop
    await _until(lambda: not a._tasks, seconds=LEASE.lease_seconds)
    world.faults.hang["reserve"].set()  # A's cancelled reserve may still land: that is fine
    async with recovering(b):
        order = await final(b, order.order_id)

    assert order.status is Status.CONFIRMED
    assert world.inventory.available["widget"] == 8  # one reservation, however many reserves
    assert world.payments.net_charged(order.order_id) == 2500


@dataclass
class Counting:
    """One replica's view of the inventory, counting the reserves that replica sends."""

    inner: Any
    reserves: int = 0

    async def reserve(self, order_id: str, lines: list[OrderLine]) -> Reservation:
        self.reserves += 1
        return await self.inner.reserve(order_id, lines)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_replica_retrying_a_step_stops_once_another_holds_the_lease(new_runner, world):
    settings = SagaSettings(
        lease_seconds=0.6,
        recovery_interval_seconds=0.05,
        give_up_seconds=30,
        quick_retries=1000,
        retry_initial_seconds=0.05,
        retry_max_seconds=0.05,
    )
    world.faults.failing["reserve"] = Unavailable("UNAVAILABLE: inventory down")
    a, b = (
        new_runner(owner="order-a", settings=settings),
        new_runner(owner="order-b", settings=settings),
    )
    seen_by_a = Counting(world.inventory)
    a.deps = Dependencies(world.users, seen_by_a, world.payments)
    a.uow = gate = DatabaseGate(a.uow)
    order = await place(a, world)
    await _until(lambda: seen_by_a.reserves >= 3)

    gate.open.clear()  # A stalls between two tries; its lease lapses and B takes over
    await asyncio.sleep(settings.lease_seconds + 0.1)
    assert await b.recover_once() == [order.order_id]
    tried_by_a = seen_by_a.reserves
    gate.open.set()
    await _until(lambda: not a._tasks, seconds=1.0)

    assert seen_by_a.reserves == tried_by_a  # A checked the lease and did not try again
    assert order.order_id in b._tasks
    await b.stop()


# -- what the saga counts: final statuses, failures by step and reason, tries, undo, backlog --


async def test_orders_are_counted_by_final_status_and_failures_by_step_and_reason(
    new_runner, world
):
    changes = MetricChanges()
    runner = new_runner()
    placed = [
        await place(runner, world),
        await place(runner, world, lines=[OrderLine("gadget", 6)]),
        await place(runner, world, card=world.declined),
        await place(runner, world, user=str(uuid.uuid4())),
    ]
    for order in placed:
        await final(runner, order.order_id)

    assert changes.of("shop_orders_finished_total", status="CONFIRMED") == 1
    assert changes.of("shop_orders_finished_total", status="FAILED") == 3
    for step, reason in [
        ("RESERVING_STOCK", "out_of_stock"),
        ("CHARGING_PAYMENT", "payment_declined"),
        ("CHECKING_USER", "user_not_found"),
    ]:
        assert changes.of("shop_order_failures_total", step=step, reason=reason) == 1
    # Undo releases stock after a refusal at the reservation (a reserve may land after its
    # refusal) or later: the out-of-stock order and the declined card. Nothing was charged,
    # so nothing was refunded; the unknown user failed before anything was held.
    assert changes.of("shop_saga_compensations_total", action="release") == 2
    assert changes.of("shop_saga_compensations_total", action="refund") == 0
    tries = "shop_saga_step_duration_seconds_count"
    assert changes.of(tries, step="COMMITTING_STOCK", result="done") == 1
    assert changes.of(tries, step="CHECKING_USER", result="failed") == 1
    # One try per charge made: the pass that notes the charge is going out is not one.
    assert changes.of(tries, step="CHARGING_PAYMENT", result="done") == 1
    assert changes.of(tries, step="CHARGING_PAYMENT", result="failed") == 1


def test_every_step_and_failure_reason_is_shown_before_it_first_happens():
    shown = samples()
    for step in ("CHECKING_USER", "RESERVING_STOCK", "CHARGING_PAYMENT", "RELEASING_STOCK"):
        assert ("shop_saga_step_retries_total", (("step", step),)) in shown
    failure = (("reason", "out_of_stock"), ("step", "RESERVING_STOCK"))
    assert ("shop_order_failures_total", failure) in shown


async def test_a_step_retried_counts_each_failed_try(new_runner, world):
    changes = MetricChanges()
    world.faults.unavailable.update(reserve=2)
    runner = new_runner()
    order = await final(runner, (await place(runner, world)).order_id)

    assert order.status is Status.CONFIRMED
    assert changes.of("shop_saga_step_retries_total", step="RESERVING_STOCK") == 2
    tries = "shop_saga_step_duration_seconds_count"
    assert changes.of(tries, step="RESERVING_STOCK", result="retry") == 2
    assert changes.of(tries, step="RESERVING_STOCK", result="done") == 1


async def test_the_recovery_scan_claims_and_shows_the_oldest_unfinished_order(new_runner, world):
    changes = MetricChanges()
    world.faults.hang["charge"] = asyncio.Event()
    crashed = new_runner(owner="order-a")
    order = await place(crashed, world)
    while "charge" not in world.faults.calls:
        await asyncio.sleep(0.01)
    await crashed.stop()
    await asyncio.sleep(0.2)

    rebooted = new_runner(owner="order-a")
    assert await rebooted.recover_once() == [order.order_id]
    assert changes.of("shop_order_recovery_claims_total") == 1
    assert samples()[("shop_orders_unfinished", ())] == 1
    assert samples()[("shop_orders_unfinished_oldest_age_seconds", ())] >= 0.2

    world.faults.hang["charge"].set()
    assert (await final(rebooted, order.order_id)).status is Status.CONFIRMED
    await rebooted.recover_once()
    assert samples()[("shop_orders_unfinished", ())] == 0
    assert samples()[("shop_orders_unfinished_oldest_age_seconds", ())] == 0
