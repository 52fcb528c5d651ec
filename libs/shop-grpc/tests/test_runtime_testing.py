"""The test kit's own promises, beyond those its fake unit of work shares with storage's
(test_runtime_storage.py): what the fake refuses rather than let a test pass by mistake, what
rpc_fails lets through and what not, and the certificates it issues."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial

import grpc
import pytest
from cryptography import x509

from shop_grpc import errors, status
from shop_grpc.testing import (
    Certificates,
    FakeDatabase,
    FakeUnitOfWork,
    issue_certificates,
    rpc_fails,
)

INVALID = grpc.StatusCode.INVALID_ARGUMENT


@dataclass
class Counter:
    value: int = 0


def fake() -> tuple[FakeDatabase[Counter], partial[FakeUnitOfWork[Counter]]]:
    db = FakeDatabase(Counter())
    return db, partial(FakeUnitOfWork, db)


async def enter(uow: partial[FakeUnitOfWork[Counter]], *, readonly: bool = False) -> None:
    async with uow(readonly=readonly):
        pass


async def test_commits_publish_a_copy_and_are_counted():
    db, uow = fake()
    async with uow() as tx:
        tx.state.value = 1
        await tx.commit()
        tx.state.value = 2
        await tx.commit()
        tx.state.value = 3

    assert (db.state.value, db.commits) == (2, 2)


async def test_a_read_only_unit_of_work_may_not_commit():
    db, uow = fake()
    async with uow(readonly=True) as tx:
        tx.state.value = 1
        with pytest.raises(AssertionError, match="never writes"):
            await tx.commit()

    assert (db.state.value, db.commits) == (0, 0)


async def test_a_writer_opened_inside_another_of_its_task_fails_at_once_instead_of_waiting():
    _, uow = fake()
    async with uow():
        await enter(uow, readonly=True)  # a reader does not wait for the writer
        with pytest.raises(AssertionError, match="inside another"):
            await enter(uow)
    await enter(uow)  # the write lock was given back


async def test_a_writer_whose_repositories_cannot_be_made_gives_the_write_lock_back():
    failures = [LookupError("a repository that cannot be made")]

    class BrokenOnce(FakeUnitOfWork[Counter]):
        def bind(self, state: Counter) -> None:
            if failures:
                raise failures.pop()

    uow = partial(BrokenOnce, FakeDatabase(Counter()))
    with pytest.raises(LookupError):
        await enter(uow)

    await asyncio.wait_for(enter(uow), timeout=1)


async def test_a_commit_elsewhere_is_unseen_by_an_open_unit_and_outlives_its_rollback():
    db, uow = fake()
    async with uow() as tx:
        db.commit_elsewhere(lambda counter: setattr(counter, "value", 5))
        assert tx.state.value == 0
        tx.state.value = 1
        # Committing over it would lose it: whole copies cannot be merged.
        with pytest.raises(AssertionError, match="elsewhere"):
            await tx.commit()

    assert db.state.value == 5
    assert db.commits == 0


# --- rpc_fails ------------------------------------------------------------------------------


def failed_call(error: errors.ShopError) -> grpc.aio.AioRpcError:
    """The error a client sees when a server answers `error`, details and all."""
    trailers = grpc.aio.Metadata(*status.trailing_metadata(status.to_status(error)))
    return grpc.aio.AioRpcError(status.code_of(error), grpc.aio.Metadata(), trailers, error.message)


async def answer(error: BaseException | None) -> None:
    if error is not None:
        raise error


BAD_QUANTITY = errors.InvalidArgument(
    [
        errors.FieldViolation("lines[0].quantity", "must be at least 1"),
        errors.FieldViolation("user_id", "must be a UUID"),
    ]
)
REUSED = errors.AlreadyExists("request", "r-1")
REUSED.reason = "REQUEST_ID_REUSED"


async def test_rpc_fails_passes_a_matching_failure_and_keeps_what_it_caught():
    with rpc_fails(INVALID, fields={"user_id", "lines[0].quantity"}, field="user_id") as failed:
        await answer(failed_call(BAD_QUANTITY))
    with rpc_fails(grpc.StatusCode.ALREADY_EXISTS, reason="REQUEST_ID_REUSED") as reused:
        await answer(failed_call(REUSED))

    assert failed.code == INVALID
    assert failed.fields == ["lines[0].quantity", "user_id"]
    assert failed.error.violations[1].description == "must be a UUID"
    assert reused.error.resource_name == "r-1"
    assert "r-1" in reused.details


NOT_FOUND, ALREADY_EXISTS = grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize(
    ("code", "expected", "answered", "says"),
    [
        (INVALID, {}, None, "it did not fail"),
        (NOT_FOUND, {}, BAD_QUANTITY, "expected NOT_FOUND, got INVALID"),
        (INVALID, {"fields": {"user_id"}}, BAD_QUANTITY, "expected the fields"),
        (INVALID, {"fields": {"user_id", "x", "lines[0].quantity"}}, BAD_QUANTITY, "fields"),
        (INVALID, {"field": "lines"}, BAD_QUANTITY, "expected the field 'lines'"),
        (ALREADY_EXISTS, {"reason": "OTHER"}, REUSED, "got 'REQUEST_ID_REUSED'"),
    ],
)
async def test_rpc_fails_fails_on_any_other_outcome_saying_what_came(
    code, expected, answered, says
):
    with pytest.raises(AssertionError, match=says), rpc_fails(code, **expected):
        await answer(answered and failed_call(answered))


async def test_rpc_fails_refuses_fields_for_a_code_without_them_and_lets_other_errors_through():
    with (
        pytest.raises(TypeError, match="INVALID_ARGUMENT only"),
        rpc_fails(grpc.StatusCode.NOT_FOUND, field="user_id"),
    ):
        pass
    with pytest.raises(LookupError), rpc_fails(INVALID):
        await answer(LookupError("not a call"))


# --- certificates ---------------------------------------------------------------------------


def served_certificate(certificates: Certificates, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((certificates.identity(name) / "tls.crt").read_bytes())


def spiffe_ids(cert: x509.Certificate) -> list[str]:
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sans.get_values_for_type(x509.UniformResourceIdentifier)


def test_issue_certificates_makes_a_ca_and_the_identities_asked_for_signed_by_it(tmp_path):
    made = issue_certificates(tmp_path / "certs", "ns-1", identities=["order", "client"])

    for name in ("order", "client"):
        cert = served_certificate(made, name)
        cert.verify_directly_issued_by(made.authority.cert)
        assert spiffe_ids(cert) == [f"spiffe://shop/ns/ns-1/sa/{name}"]
        assert (made.identity(name) / "ca.crt").read_bytes() == made.authority.cert_pem
    assert made.tls("order").directory == tmp_path / "certs" / "order"
    assert not made.identity("payment").exists()


def test_a_reissued_identity_replaces_its_files_under_the_same_ca(tmp_path):
    made = issue_certificates(tmp_path, "ns-1", identities=["order"])
    first = served_certificate(made, "order")

    issued = Certificates.at(tmp_path, "ns-1").reissue("order", namespace="elsewhere")

    now = served_certificate(made, "order")
    assert now.serial_number == issued.cert.serial_number != first.serial_number
    now.verify_directly_issued_by(made.authority.cert)
    assert spiffe_ids(now) == ["spiffe://shop/ns/elsewhere/sa/order"]
