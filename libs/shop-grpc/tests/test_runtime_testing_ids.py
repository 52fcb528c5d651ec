"""id_for (shop_grpc.testing.ids): a test's made-up ids are UUIDs, one per name."""

from __future__ import annotations

import uuid

from shop_grpc.testing import id_for


def test_a_name_always_stands_for_the_same_lower_case_uuid() -> None:
    alice = id_for("alice")
    assert alice == id_for("alice") == str(uuid.UUID(alice))
    assert alice == alice.lower()
    assert id_for("bob") != alice
