"""The shared runtime of the shop services: imported by every service, never run.

config       typed settings read once from the environment
logs         structlog set-up (JSON, or console on a terminal), trace ids on every line
errors       the one error tree (no gRPC imports; domain code raises these)
status       errors <-> gRPC status codes with google.rpc details, both directions
validation   collects field violations into one INVALID_ARGUMENT
server       grpc.aio server bootstrap: health, reflection, interceptors, graceful shutdown
reflection   server reflection, v1 and v1alpha, resolving every symbol (methods too)
channels     the one place outbound channels are built; a TLS one follows certificate
             rotation (reloading_channel)
interceptors the server and client interceptor chains, in order
telemetry    OpenTelemetry tracing from the OTEL_* variables; absent when no exporter is set
storage      SQLAlchemy async engines for SQLite and PostgreSQL, migrations, units of work
changes      wake-ups for watch streams
pagination   opaque page tokens
tokens       customer access tokens (JWT): signing keys from a directory, issue, verify
money        integer minor-unit money
protoconv    timestamps and money <-> proto messages
testing      fixtures other packages reuse (servers, processes, certificates, grpcurl)
"""
