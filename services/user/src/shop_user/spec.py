"""The user service, as the suite knows it (shop_grpc.registry)."""

from shop.user.v1 import user_pb2
from shop_grpc.registry import ANYONE, CLIENT, ServiceSpec

OPERATOR = (CLIENT,)

SPEC = ServiceSpec(
    name="user",
    default_port=50054,
    descriptor=user_pb2.DESCRIPTOR.services_by_name["UserService"],
    signs_tokens=True,
    callers={
        "CreateUser": OPERATOR,
        # The order saga checks that its customer exists.
        "GetUser": (CLIENT, "order"),
        "UpdateUser": OPERATOR,
        "DeleteUser": OPERATOR,
        "ListUsers": OPERATOR,
        "WatchUsers": OPERATOR,
        "BatchCreateUsers": OPERATOR,
        # Whatever carries customers' calls signs them in (the CLI, a web front end) and
        # reads the keys that verify their tokens.
        "Login": (ANYONE,),
        "GetJsonWebKeySet": (ANYONE,),
    },
)
