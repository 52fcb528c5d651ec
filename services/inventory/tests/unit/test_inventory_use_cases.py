"""Use cases over an in-memory unit of work."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from shop_grpc.idempotency import RequestIdReused
from shop_grpc.money import Money
from shop_grpc.pagination import PageTokens
from shop_grpc.testing import FakeDatabase, FakeUnitOfWork
from shop_inventory.domain.errors import (
    ImportedProductNotFound,
    ProductAlreadyExists,
    ReservationExpired,
)
from shop_inventory.domain.model import Product, ReservationState
from shop_inventory.service_layer import catalogue, reservations, stock
from shop_inventory.service_layer.stock import ImportLine

NOW = datetime(2025, 1, 1, tzinfo=UTC)
TTL = timedelta(minutes=10)


class FakeStore:
    """What the inventory stores; units of work change a copy of it (shop_grpc.testing)."""

    def __init__(self):
        self.products = {}
        self.request_ids = {}
        self.levels = {}
        self.reservations = {}
        self.imports = {}


class FakeProducts:
    def __init__(self, state):
        self.state = state

    async def add(self, product, request_id):
        if product.product_id in self.state.products:
            return False
        self.state.products[product.product_id] = product
        self.state.request_ids[product.product_id] = request_id
        return True

    async def get(self, product_id):
        return self.state.products.get(product_id)

    async def get_many(self, product_ids):
        return {p: self.state.products[p] for p in product_ids if p in self.state.products}

    async def request_id_of(self, product_id):
        return self.state.request_ids.get(product_id)

    async def created_by(self, request_id):
        made = [p for p, r in self.state.request_ids.items() if r == request_id]
        return self.state.products[made[0]] if made else None

    async def list_after(self, after, limit):
        ids = sorted(p for p in self.state.products if after is None or p > after)
        return [self.state.products[p] for p in ids[:limit]]


class FakeStock:
    def __init__(self, state):
        self.state = state

    async def add(self, level):
        self.state.levels[level.product_id] = level

    async def get_many(self, product_ids):
        return {p: copy.copy(self.state.levels[p]) for p in product_ids if p in self.state.levels}

    lock = get_many

    async def save(self, levels):
        for level in levels:
            self.state.levels[level.product_id] = copy.copy(level)


class FakeReservations:
    def __init__(self, state):
        self.state = state

    async def add(self, reservation):
        if reservation.order_id in self.state.reservations:
            return False
        self.state.reservations[reservation.order_id] = copy.deepcopy(reservation)
        return True

    async def get(self, order_id, *, lock=False):
        return copy.deepcopy(self.state.reservations.get(order_id))

    async def lock_overdue(self, now, limit):
        due = [r for r in self.state.reservations.values() if r.is_overdue(now)]
        return copy.deepcopy(due[:limit])

    async def save_state(self, reservation, now):
        self.state.reservations[reservation.order_id] = copy.deepcopy(reservation)


class FakeImports:
    def __init__(self, state):
        self.state = state

    async def add(self, request_id, fingerprint, lines_applied, now):
        if request_id in self.state.imports:
            return False
        self.state.imports[request_id] = fingerprint
        return True

    async def fingerprint_of(self, request_id):
        return self.state.imports.get(request_id)


class FakeInventoryUnitOfWork(FakeUnitOfWork[FakeStore]):
    def bind(self, state):
        self.products = FakeProducts(state)
        self.stock = FakeStock(state)
        self.reservations = FakeReservations(state)
        self.imports = FakeImports(state)


@pytest.fixture
def db():
    return FakeDatabase(FakeStore())


@pytest.fixture
def uow(db):
    return partial(FakeInventoryUnitOfWork, db)


async def _add(uow, product_id, available=0, price=100):
    product = Product(product_id, product_id, "", Money("USD", price), NOW)
    await catalogue.create_product(uow, product, request_id="")
    if available:
        await stock.import_stock(uow, "", "", [ImportLine(product_id, available)], NOW)
    return product


def _level(db, product_id):
    level = db.state.levels[product_id]
    return level.available, level.reserved, level.sold


async def test_create_product_starts_with_empty_stock(db, uow):
    await _add(uow, "a")

    assert _level(db, "a") == (0, 0, 0)


async def test_create_product_retry_returns_it_but_another_request_clashes(db, uow):
    product = Product("a", "A", "", Money("USD", 100), NOW)
    await catalogue.create_product(uow, product, "req-1")
    other = Product("a", "Other", "", Money("USD", 5), NOW)

    assert await catalogue.create_product(uow, product, "req-1") == product
    with pytest.raises(RequestIdReused):
        await catalogue.create_product(uow, other, "req-1")
    with pytest.raises(RequestIdReused):
        await catalogue.create_product(uow, Product("b", "B", "", Money("USD", 5), NOW), "req-1")
    with pytest.raises(ProductAlreadyExists):
        await catalogue.create_product(uow, other, "req-2")
    assert list(db.state.products) == ["a"]


async def test_list_products_reports_whether_more_follow(uow):
    for product_id in ("c", "a", "b"):
        await _add(uow, product_id)

    tokens = PageTokens(bytes(32))
    first = await catalogue.list_products(uow, tokens, 2, "")
    rest = await catalogue.list_products(uow, tokens, 2, first.next_page_token)
    page, more = first.items, bool(first.next_page_token)
    rest, more_after = rest.items, bool(rest.next_page_token)

    assert ([p.product_id for p in page], more) == (["a", "b"], True)
    assert ([p.product_id for p in rest], more_after) == (["c"], False)


async def test_import_is_all_or_nothing_and_idempotent(db, uow):
    await _add(uow, "a")

    with pytest.raises(ImportedProductNotFound, match=r"requests\[1\]"):
        await stock.import_stock(uow, "r1", "a2x1", [ImportLine("a", 2), ImportLine("x", 1)], NOW)
    assert _level(db, "a") == (0, 0, 0)

    applied = await stock.import_stock(uow, "r1", "a2", [ImportLine("a", 2)], NOW)
    replay = await stock.import_stock(uow, "r1", "a2", [ImportLine("a", 2)], NOW)

    assert (applied.lines_applied, replay.lines_applied) == (1, 0)
    assert replay.levels[0].available == 2
    assert _level(db, "a") == (2, 0, 0)
    with pytest.raises(RequestIdReused):
        await stock.import_stock(uow, "r1", "a5", [ImportLine("a", 5)], NOW)
    assert _level(db, "a") == (2, 0, 0)


async def test_reserve_twice_for_one_order_holds_stock_once(db, uow):
    await _add(uow, "a", available=5)

    first = await reservations.reserve_items(uow, "o1", [("a", 2)], NOW, TTL)
    again = await reservations.reserve_items(uow, "o1", [("a", 2)], NOW, TTL)

    assert again == first
    assert _level(db, "a") == (3, 2, 0)


async def test_commit_of_overdue_reservation_expires_it_and_keeps_the_expiry(db, uow):
    await _add(uow, "a", available=5)
    await reservations.reserve_items(uow, "o1", [("a", 2)], NOW, TTL)

    with pytest.raises(ReservationExpired):
        await reservations.commit_reservation(uow, "o1", NOW + TTL)

    assert db.state.reservations["o1"].state is ReservationState.EXPIRED
    assert _level(db, "a") == (5, 0, 0)


async def test_expire_overdue_only_touches_pending_reservations_past_expiry(db, uow):
    await _add(uow, "a", available=10)
    await reservations.reserve_items(uow, "old", [("a", 2)], NOW, TTL)
    await reservations.reserve_items(uow, "sold", [("a", 3)], NOW, TTL)
    await reservations.commit_reservation(uow, "sold", NOW)
    await reservations.reserve_items(uow, "new", [("a", 1)], NOW + TTL, TTL)

    expired = await reservations.expire_overdue(uow, NOW + TTL)

    assert expired == 1
    states = {k: r.state for k, r in db.state.reservations.items()}
    assert states == {
        "old": ReservationState.EXPIRED,
        "sold": ReservationState.COMMITTED,
        "new": ReservationState.PENDING,
    }
    assert _level(db, "a") == (6, 1, 3)
    assert await reservations.expire_overdue(uow, NOW + TTL) == 0
