from shop_grpc.testing import database_url  # noqa: F401  (a fixture: SQLite and PostgreSQL)
