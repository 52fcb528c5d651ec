"""Text views of the API's messages, one function per message kind."""

from __future__ import annotations

from collections.abc import Iterable

from shop.common.v1 import money_pb2
from shop.inventory.v1 import inventory_pb2
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2
from shop.user.v1 import user_pb2
from shop_cli.money import format_money
from shop_cli.output import enum_name, fields, table, timestamp


def order_status(order: order_pb2.Order) -> str:
    return enum_name(order_pb2.Order.Status.Name(order.status), "STATUS_")


def order_step(order: order_pb2.Order) -> str:
    return enum_name(order_pb2.Order.Step.Name(order.step), "STEP_")


def payment_status(payment: payment_pb2.Payment) -> str:
    return enum_name(payment_pb2.Payment.Status.Name(payment.status), "STATUS_")


def user(value: user_pb2.User) -> str:
    return fields(
        [
            ("user_id", value.user_id),
            ("username", value.username),
            ("email", value.email),
            ("display_name", value.display_name),
            ("created", timestamp(value.create_time)),
            ("updated", timestamp(value.update_time)),
        ]
    )


def users(values: Iterable[user_pb2.User]) -> str:
    return table(
        ["USER ID", "USERNAME", "EMAIL", "DISPLAY NAME", "CREATED"],
        [
            (u.user_id, u.username, u.email, u.display_name, timestamp(u.create_time))
            for u in values
        ],
    )


def user_event(event: user_pb2.UserEvent) -> str:
    kind = enum_name(user_pb2.UserEvent.Kind.Name(event.kind), "KIND_")
    u = event.user
    return f"{event.sequence:>6}  {kind:<8} {u.user_id}  {u.username}  {u.email}"


def product(value: inventory_pb2.Product) -> str:
    return fields(
        [
            ("product_id", value.product_id),
            ("title", value.title),
            ("price", format_money(value.price)),
            ("description", value.description),
            ("created", timestamp(value.create_time)),
        ]
    )


def products(values: Iterable[inventory_pb2.Product]) -> str:
    return table(
        ["PRODUCT ID", "TITLE", "PRICE"],
        [(p.product_id, p.title, format_money(p.price)) for p in values],
    )


def stock_levels(values: Iterable[inventory_pb2.StockLevel]) -> str:
    return table(
        ["PRODUCT ID", "AVAILABLE", "RESERVED", "SOLD", "UPDATED"],
        [(s.product_id, s.available, s.reserved, s.sold, timestamp(s.update_time)) for s in values],
    )


def stock_event(level: inventory_pb2.StockLevel) -> str:
    return (
        f"{timestamp(level.update_time)}  {level.product_id}  available={level.available} "
        f"reserved={level.reserved} sold={level.sold}"
    )


def order(value: order_pb2.Order) -> str:
    summary = fields(
        [
            ("order_id", value.order_id),
            ("status", order_status(value)),
            ("step", order_step(value)),
            ("user_id", value.user_id),
            ("total", format_money(value.total)),
            ("payment_id", value.payment_id),
            ("failure_reason", value.failure_reason),
            ("request_id", value.request_id),
            ("created", timestamp(value.create_time)),
            ("updated", timestamp(value.update_time)),
        ]
    )
    return f"{summary}\n\n{order_lines(value)}"


def order_lines(value: order_pb2.Order) -> str:
    rows = [
        (
            line.product_id,
            line.quantity,
            format_money(line.unit_price),
            format_money(_times(line.unit_price, line.quantity))
            if line.HasField("unit_price")
            else "-",
        )
        for line in value.lines
    ]
    return table(["PRODUCT ID", "QTY", "UNIT PRICE", "LINE TOTAL"], rows)


def _times(price: money_pb2.Money, quantity: int) -> money_pb2.Money:
    return money_pb2.Money(
        currency_code=price.currency_code, amount_minor=price.amount_minor * quantity
    )


def cart(value: order_pb2.Cart) -> str:
    lines = table(
        ["PRODUCT ID", "TITLE", "QTY", "UNIT PRICE", "LINE TOTAL", "AVAILABLE"],
        [
            (
                line.product_id,
                line.title,
                line.quantity,
                format_money(line.unit_price),
                format_money(line.line_total),
                line.available,
            )
            for line in value.lines
        ],
    )
    stock = "every line in stock" if value.all_available else "NOT every line in stock"
    return f"{lines}\n\ntotal  {format_money(value.total)}  ({stock})"


def orders(values: Iterable[order_pb2.Order]) -> str:
    return table(
        ["ORDER ID", "STATUS", "TOTAL", "LINES", "CREATED", "FAILURE REASON"],
        [
            (
                o.order_id,
                order_status(o),
                format_money(o.total),
                len(o.lines),
                timestamp(o.create_time),
                o.failure_reason,
            )
            for o in values
        ],
    )


def order_event(value: order_pb2.Order) -> str:
    reason = f"  {value.failure_reason}" if value.failure_reason else ""
    return f"{timestamp(value.update_time)}  {order_status(value):<9} {order_step(value)}{reason}"
