"""The check phase: stock and payments read back from the services, held to the rules of
`shop_cli.consistency`."""

from __future__ import annotations

from dataclasses import dataclass

from shop.inventory.v1 import inventory_pb2
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2
from shop_cli import consistency, views
from shop_cli.bench.fanout import bounded
from shop_cli.bench.seed import Fixture
from shop_cli.paging import PAGE_SIZE, collect
from shop_cli.targets import Clients


@dataclass(frozen=True)
class Findings:
    """What the check read and what it found wrong."""

    checks: list[consistency.StockCheck]
    """One per product of the run."""
    orders: list[consistency.OrderFacts]
    violations: list[consistency.Violation]
    """Empty when stock and money add up."""


async def check(
    clients: Clients, fixture: Fixture, orders: list[order_pb2.Order], call_timeout: float
) -> Findings:
    """Reads the run's stock levels and every order's payments (`call_timeout` seconds a
    call) and checks them against `orders`. Raises grpc.aio.AioRpcError when a read fails."""
    levels = await bounded(
        fixture.product_ids,
        lambda p: clients.inventory.GetStock(
            inventory_pb2.GetStockRequest(product_id=p), timeout=call_timeout
        ),
    )
    final = {lv.product_id: consistency.StockFacts(lv.available, lv.reserved) for lv in levels}
    facts = [order_facts(o) for o in orders]
    listed = await bounded(facts, lambda o: _payments_of(clients, o.order_id, call_timeout))
    payments = {
        o.order_id: [payment_facts(p) for p in found]
        for o, found in zip(facts, listed, strict=True)
    }
    checks = consistency.stock_checks(fixture.initial, final, facts)
    return Findings(checks, facts, consistency.all_violations(checks, facts, payments))


async def _payments_of(
    clients: Clients, order_id: str, call_timeout: float
) -> list[payment_pb2.Payment]:
    async def fetch(token: str) -> tuple[list[payment_pb2.Payment], str]:
        request = payment_pb2.ListPaymentsRequest(
            order_id=order_id, page_size=PAGE_SIZE, page_token=token
        )
        page = await clients.payments.ListPayments(request, timeout=call_timeout)
        return list(page.payments), page.next_page_token

    return await collect(fetch)


def order_facts(order: order_pb2.Order) -> consistency.OrderFacts:
    quantities: dict[str, int] = {}
    for line in order.lines:
        quantities[line.product_id] = quantities.get(line.product_id, 0) + line.quantity
    return consistency.OrderFacts(
        order_id=order.order_id,
        status=views.order_status(order),
        total_minor=order.total.amount_minor,
        currency=order.total.currency_code,
        quantities=quantities,
        payment_id=order.payment_id,
    )


def payment_facts(payment: payment_pb2.Payment) -> consistency.PaymentFacts:
    return consistency.PaymentFacts(
        payment_id=payment.payment_id,
        status=views.payment_status(payment),
        amount_minor=payment.amount.amount_minor,
        currency=payment.amount.currency_code,
        refunded_minor=payment.refunded.amount_minor,
    )
