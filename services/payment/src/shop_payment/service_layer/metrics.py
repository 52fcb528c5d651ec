"""What the card processor answered, and what was given back.

    shop_payment_charges_total   counter   status
    shop_payment_refunds_total   counter

``status`` is the charge's outcome: ``SUCCEEDED``, ``DECLINED`` (the card was refused) or
``FAILED`` (the processor could not decide). Counted once per charge made: a repeated Charge
of the same order returns the first payment and is not counted again; likewise a refund
replayed under its request id. Amounts are not exported: they belong to the ledger, not to
samples of floating-point numbers.
"""

from __future__ import annotations

from prometheus_client import Counter

from shop_payment.domain.model import PaymentStatus

CHARGES = Counter(
    "shop_payment_charges", "Charges made at the card processor, by outcome.", ("status",)
)
REFUNDS = Counter("shop_payment_refunds", "Refunds made (whole or partial).")
CHARGE_OUTCOMES = (PaymentStatus.SUCCEEDED, PaymentStatus.DECLINED, PaymentStatus.FAILED)
# Shown at 0 before the first charge, so rates and alerts see every series from the start.
for _status in CHARGE_OUTCOMES:
    CHARGES.labels(_status.value)


def charged(status: PaymentStatus) -> None:
    CHARGES.labels(status.value).inc()


def refunded() -> None:
    REFUNDS.inc()
