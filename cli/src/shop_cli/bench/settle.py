"""The settle phase: after the load, wait until the run's orders are final."""

from __future__ import annotations

import asyncio
import time

from shop.order.v1 import order_pb2
from shop_cli.bench import say
from shop_cli.bench.fanout import bounded
from shop_cli.bench.load import Progress
from shop_cli.bench.seed import Fixture
from shop_cli.commands.orders import FINAL, list_all
from shop_cli.targets import Clients


async def settle(
    clients: Clients,
    fixture: Fixture,
    progress: Progress,
    call_timeout: float,
    settle_timeout: float,
) -> list[order_pb2.Order]:
    """Every order of the bench user, once final or when `settle_timeout` seconds run out.

    ListOrders also finds orders whose CreateOrder answer was lost (a deadline,
    say) but which the service went on to place. Each call has `call_timeout` seconds; a
    failed one raises grpc.aio.AioRpcError.
    """
    orders = {c.order.order_id: c.order for c in progress.calls if c.order is not None}
    for order in await list_all(clients, fixture.user_id, call_timeout):
        orders.setdefault(order.order_id, order)
    deadline = time.monotonic() + settle_timeout
    while True:
        pending = [o.order_id for o in orders.values() if o.status not in FINAL]
        if not pending or time.monotonic() > deadline:
            return list(orders.values())
        say(f"waiting for {len(pending)} orders to become final")
        for order in await bounded(pending, lambda i: _get_order(clients, i, call_timeout)):
            orders[order.order_id] = order
        await asyncio.sleep(0.5)


async def _get_order(clients: Clients, order_id: str, call_timeout: float) -> order_pb2.Order:
    request = order_pb2.GetOrderRequest(order_id=order_id)
    order: order_pb2.Order = await clients.orders.GetOrder(request, timeout=call_timeout)
    return order
