from shop_grpc.testing import database_url, db, traced  # noqa: F401  (fixtures)
