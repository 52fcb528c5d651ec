"""The test kit every package reuses, one job per module:

    databases   ``database_url``: a fixture running each test on SQLite, then on PostgreSQL
    serving     in-process servers: ``serving`` (plaintext), ``serving_mtls``; ``test_settings``
    processes   ``ServiceProcess``: ``python -m <service>`` as an operator runs it
    grpcurl     ``Grpcurl``: the real grpcurl as one identity
    ports, ids  ``free_port``; ``id_for``, the UUID a test's name stands for

Import from here; fixtures are taken into a conftest.py by importing them:

    from shop_grpc.testing import database_url  # noqa: F401  (a fixture)
"""

from shop_grpc.testing.databases import (
    POSTGRES_ENV,
    database_url,
    postgres_database,
    postgres_server_url,
)
from shop_grpc.testing.grpcurl import Grpcurl, GrpcurlResult
from shop_grpc.testing.ids import id_for
from shop_grpc.testing.ports import free_port
from shop_grpc.testing.processes import SERVING, ServiceProcess
from shop_grpc.testing.serving import MtlsServing, serving, serving_mtls, test_settings

__all__ = [
    "POSTGRES_ENV",
    "SERVING",
    "Grpcurl",
    "GrpcurlResult",
    "MtlsServing",
    "ServiceProcess",
    "database_url",
    "free_port",
    "id_for",
    "postgres_database",
    "postgres_server_url",
    "serving",
    "serving_mtls",
    "test_settings",
]
