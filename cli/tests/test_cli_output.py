import grpc

from shop.common.v1 import money_pb2
from shop.order.v1 import order_pb2
from shop_cli import views
from shop_cli.output import describe_rpc_error, fields, message_json, table
from shop_grpc import errors
from shop_grpc.status import code_of, to_status, trailing_metadata


class FakeRpcError(grpc.RpcError):  # type: ignore[misc]
    """What a failed call raises: code, message and the status-details trailer."""

    def __init__(self, error: errors.ShopError):
        self._code = code_of(error)
        self._message = error.message
        self._trailers = trailing_metadata(to_status(error))

    def code(self):
        return self._code

    def details(self):
        return self._message

    def trailing_metadata(self):
        return self._trailers


def test_table_aligns_columns_and_right_aligns_numbers():
    text = table(["ID", "QTY"], [("widget", 1), ("g", 250)])
    assert text.splitlines() == ["ID      QTY", "widget    1", "g       250"]


def test_table_shows_missing_values_as_dash():
    assert table(["A", "B"], [("x", "")]).splitlines()[1] == "x  -"


def test_fields_line_up_values():
    assert fields([("id", "1"), ("status", "OK")]).splitlines() == ["id      1", "status  OK"]


def test_invalid_argument_error_lists_field_violations():
    error = errors.InvalidArgument(
        [errors.FieldViolation("user.email", "must be an email address")]
    )
    lines = describe_rpc_error(FakeRpcError(error))
    assert lines[0].startswith("error: INVALID_ARGUMENT: ")
    assert "  user.email: must be an email address" in lines


def test_failed_precondition_error_lists_its_violations():
    error = errors.FailedPrecondition(
        "not enough stock",
        [errors.PreconditionViolation("STOCK", "widget", "2 available, 5 wanted")],
        reason="OUT_OF_STOCK",
    )
    lines = describe_rpc_error(FakeRpcError(error))
    assert lines == [
        "error: FAILED_PRECONDITION: not enough stock",
        "  STOCK widget: 2 available, 5 wanted",
        "  reason: OUT_OF_STOCK",
    ]


def test_an_expired_token_says_how_to_sign_in_again():
    error = errors.Unauthenticated(
        "the access token has expired; sign in again", reason="TOKEN_EXPIRED"
    )
    lines = describe_rpc_error(FakeRpcError(error))
    assert lines[:2] == [
        "error: UNAUTHENTICATED: the access token has expired; sign in again",
        "  reason: TOKEN_EXPIRED",
    ]
    assert "shop login" in lines[2]


def test_not_found_error_is_one_line():
    lines = describe_rpc_error(FakeRpcError(errors.NotFound("user", "u1")))
    assert lines == ["error: NOT_FOUND: user 'u1' not found"]


def sample_order():
    usd = money_pb2.Money(currency_code="USD", amount_minor=1250)
    return order_pb2.Order(
        order_id="o1",
        status=order_pb2.Order.STATUS_CONFIRMED,
        step=order_pb2.Order.STEP_DONE,
        lines=[order_pb2.OrderLine(product_id="demo-widget", quantity=2, unit_price=usd)],
        total=money_pb2.Money(currency_code="USD", amount_minor=2500),
        payment_id="p1",
    )


def test_order_view_shows_status_lines_and_total():
    text = views.order(sample_order())
    assert "status          CONFIRMED" in text
    assert "total           25.00 USD" in text
    assert "demo-widget    2  12.50 USD   25.00 USD" in text
    assert "failure_reason  -" in text


def test_json_output_is_canonical_proto_json():
    assert '"status": "STATUS_CONFIRMED"' in message_json(sample_order())
    assert '"paymentId": "p1"' in message_json(sample_order())
