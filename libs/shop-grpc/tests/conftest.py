from shop_grpc.testing import database_url, db  # noqa: F401  (fixtures)
