"""The order service's settings, read once from the environment.

Beyond shop_grpc.config's common variables:
    SHOP_USER_TARGET, SHOP_INVENTORY_TARGET, SHOP_PAYMENT_TARGET   where the dependencies are
    SHOP_ORDER_LEASE_SECONDS         saga lease; a dead replica's orders move on after this (15)
    SHOP_ORDER_RECOVERY_SECONDS      how often unfinished orders are looked for (2)
    SHOP_ORDER_GIVE_UP_SECONDS       a forward step still failing this long after the order was
                                     placed fails it, whatever the error (60)
    SHOP_ORDER_WAIT_SECONDS          how long CreateOrder waits without a caller deadline (30)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from shop_grpc.config import Env, ServerSettings, dependency_target, server_settings
from shop_order.service_layer.orders import WaitSettings
from shop_order.service_layer.saga_runner import SagaSettings
from shop_order.spec import SPEC


@dataclass(frozen=True)
class Targets:
    user: str
    inventory: str
    payment: str


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    targets: Targets
    saga: SagaSettings
    waits: WaitSettings
    boot_id: str
    """Tells this boot of the replica from earlier ones, whose leases it may take over."""


def load(env: Env) -> Settings:
    return Settings(
        server=server_settings(SPEC.name, env),
        targets=Targets(
            user=dependency_target(env, "user"),
            inventory=dependency_target(env, "inventory"),
            payment=dependency_target(env, "payment"),
        ),
        saga=SagaSettings(
            lease_seconds=env.float("SHOP_ORDER_LEASE_SECONDS", 15.0, minimum=1.0),
            recovery_interval_seconds=env.float("SHOP_ORDER_RECOVERY_SECONDS", 2.0, minimum=0.05),
            give_up_seconds=env.float("SHOP_ORDER_GIVE_UP_SECONDS", 60.0, minimum=1.0),
        ),
        waits=WaitSettings(default_wait_seconds=env.float("SHOP_ORDER_WAIT_SECONDS", 30.0)),
        boot_id=str(uuid.uuid4()),
    )
