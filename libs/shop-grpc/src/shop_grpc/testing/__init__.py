"""The test kit every package reuses, one job per module:

    databases     ``database_url``: a fixture running each test on SQLite, then on PostgreSQL;
                  ``db``: that database with the package's tables made (``migrated_database``)
    fakes         ``FakeUnitOfWork`` on a ``FakeDatabase``: storage's unit of work in memory,
                  with its rollback and its ``DuplicateKey`` (``UniqueViolation``)
    rpc           ``rpc_fails``: a call failed with this status code, these fields, this reason
    serving       in-process servers: ``serving`` (plaintext), ``serving_mtls``; ``test_settings``
    api           ``generated_services``: every gRPC service generated from protos/
    certificates  ``issue_certificates``: a CA and an identity per name in a directory;
                  ``served_certificate``: the certificate a server shows a new connection
    processes     ``ServiceProcess``: ``python -m <service>`` as an operator runs it
    grpcurl       ``Grpcurl``: the real grpcurl as one identity
    ports, ids    ``free_port``; ``id_for``, the UUID a test's name stands for
    tracing       ``traced``: a fixture recording the test's spans in memory (``Traced``)
    metrics       ``MetricChanges``: how much each Prometheus series grew during a test;
                  ``scrape``: a /metrics endpoint's answer
    tokens        ``make_token_keys``: an access token key pair laid out for the issuer and the
                  verifiers (``TokenKeys``); ``bearer``: the metadata carrying a token
    calls         handlers that never answer and ``end_early``: a call cancelled or expired

Import from here; fixtures are taken into a conftest.py by importing them:

    from shop_grpc.testing import database_url, db  # noqa: F401  (fixtures)
"""

from shop_grpc.testing.api import generated_services
from shop_grpc.testing.certificates import Certificates, issue_certificates, served_certificate
from shop_grpc.testing.databases import (
    ENGINES,
    POSTGRES_ENV,
    database_url,
    db,
    fresh_database_url,
    migrated_database,
    postgres_database,
    postgres_server_url,
)
from shop_grpc.testing.fakes import FakeDatabase, FakeUnitOfWork, UniqueViolation
from shop_grpc.testing.grpcurl import Grpcurl, GrpcurlResult
from shop_grpc.testing.ids import id_for
from shop_grpc.testing.metrics import MetricChanges, scrape
from shop_grpc.testing.ports import free_port
from shop_grpc.testing.processes import SERVING, ServiceProcess
from shop_grpc.testing.rpc import RpcFailure, rpc_fails
from shop_grpc.testing.serving import MtlsServing, serving, serving_mtls, test_settings
from shop_grpc.testing.tokens import TokenKeys, bearer, make_token_keys
from shop_grpc.testing.tracing import Traced, traced

__all__ = [
    "ENGINES",
    "POSTGRES_ENV",
    "SERVING",
    "Certificates",
    "FakeDatabase",
    "FakeUnitOfWork",
    "Grpcurl",
    "GrpcurlResult",
    "MetricChanges",
    "MtlsServing",
    "RpcFailure",
    "ServiceProcess",
    "TokenKeys",
    "Traced",
    "UniqueViolation",
    "bearer",
    "database_url",
    "db",
    "free_port",
    "fresh_database_url",
    "generated_services",
    "id_for",
    "issue_certificates",
    "make_token_keys",
    "migrated_database",
    "postgres_database",
    "postgres_server_url",
    "rpc_fails",
    "scrape",
    "served_certificate",
    "serving",
    "serving_mtls",
    "test_settings",
    "traced",
]
