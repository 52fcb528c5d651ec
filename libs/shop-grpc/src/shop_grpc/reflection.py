"""Server reflection on ``grpc.reflection.v1`` and ``v1alpha`` that resolves every symbol.

grpcio-reflection's servicer is kept, with two gaps filled:

- **Methods and enum values.** It looks symbols up with
  ``DescriptorPool.FindFileContainingSymbol``, which (with the upb pool) finds
  services, messages, enums, fields and extensions but not methods (grpc/grpc#34743).
  So ``grpcurl describe pkg.Service.Method`` said "Symbol not found", and tools that
  resolve a method before calling it (ghz) could not call anything. Enum values are
  found only under protobuf's scoping (``pkg.VALUE``, beside the enum), while grpcurl
  asks for ``pkg.Enum.VALUE``. A symbol the pool does not know is looked up again as
  a member of its parent service or enum.
- **v1.** The library serves only ``grpc.reflection.v1alpha``; ``grpc.reflection.v1``
  is the same protocol under a new package, identical on the wire (same messages,
  same field numbers). The one servicer is registered under both names. Clients that
  resolve every listed service before a call (grpcurl) must also be able to describe
  ``grpc.reflection.v1.ServerReflection``, so its file is derived from the library's
  v1alpha file (package and type names changed) and added to the descriptor pool.

Each reply carries the file asked for and all its transitive dependencies, whatever
they import, so clients never need a second request to use a type.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1ALPHA_SERVICE = reflection.SERVICE_NAME
"""``grpc.reflection.v1alpha.ServerReflection``: what grpcurl before 1.8.8 speaks."""
V1_PACKAGE = "grpc.reflection.v1"
V1_SERVICE = f"{V1_PACKAGE}.ServerReflection"
V1_FILE = "grpc/reflection/v1/reflection.proto"
"""Where the upstream v1 file lives, so a client's imports of it resolve here too."""
SERVICE_NAMES = (V1_SERVICE, V1ALPHA_SERVICE)


class ReflectionServicer(reflection.aio.ReflectionServicer):
    """grpcio-reflection's async servicer, which also finds the file of a method."""

    def __init__(self, service_names: Iterable[str], pool: descriptor_pool.DescriptorPool) -> None:
        super().__init__(service_names, pool=pool)
        self.pool = pool

    def _file_containing_symbol(
        self, request: reflection_pb2.ServerReflectionRequest, fully_qualified_name: str
    ) -> reflection_pb2.ServerReflectionResponse:
        reply = super()._file_containing_symbol(request, fully_qualified_name)
        if reply.HasField("error_response"):
            parent = self._parent_of_member(fully_qualified_name)
            if parent:
                return super()._file_containing_symbol(request, parent)
        return reply

    def _parent_of_member(self, name: str) -> str:
        """The service or enum that `name` is a method or value of (``pkg.Svc.Method``,
        ``pkg.Enum.VALUE``), or "" if it is neither.

        Protobuf scopes an enum value beside its enum (``pkg.VALUE``), which the pool
        finds; grpcurl asks for it inside the enum (``pkg.Enum.VALUE``), which it does not.
        """
        parent, _, member = name.rpartition(".")
        try:
            service = self.pool.FindServiceByName(parent)
        except KeyError:
            pass
        else:
            return str(service.full_name) if member in service.methods_by_name else ""
        try:
            enum = self.pool.FindEnumTypeByName(parent)
        except KeyError:
            return ""
        return str(enum.full_name) if member in enum.values_by_name else ""


def v1_file(pool: descriptor_pool.DescriptorPool) -> FileDescriptor:
    """The file of ``grpc.reflection.v1`` in `pool`, added (derived from v1alpha's) if absent."""
    try:
        return pool.FindFileByName(V1_FILE)
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    old_prefix = f".{proto.package}."
    proto.name, proto.package = V1_FILE, V1_PACKAGE
    # v1alpha's options name its generated packages in other languages and mark it
    # deprecated; none of that is true of the derived file.
    proto.ClearField("options")

    def renamed(type_name: str) -> str:
        if type_name.startswith(old_prefix):
            return f".{V1_PACKAGE}.{type_name.removeprefix(old_prefix)}"
        return type_name

    for message in proto.message_type:
        for field in message.field:
            if field.HasField("type_name"):  # scalars have none, and must not get one
                field.type_name = renamed(field.type_name)
    for service in proto.service:
        for method in service.method:
            method.input_type = renamed(method.input_type)
            method.output_type = renamed(method.output_type)
    pool.Add(proto)
    return pool.FindFileByName(V1_FILE)


def _v1_handler(servicer: ReflectionServicer) -> grpc.GenericRpcHandler:
    # v1alpha's message classes serve v1: the two are identical on the wire.
    info = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    return grpc.method_handlers_generic_handler(V1_SERVICE, {"ServerReflectionInfo": info})


def enable(
    server: grpc.aio.Server,
    service_names: Iterable[str],
    pool: descriptor_pool.DescriptorPool | None = None,
) -> ReflectionServicer:
    """Serves reflection on `server` under both names, listing `service_names` and itself.

    `pool`: where symbols are looked up (default: the process's, which holds every
    generated ``*_pb2`` module imported so far and so every hosted service).
    """
    pool = descriptor_pool.Default() if pool is None else pool
    v1_file(pool)
    servicer = ReflectionServicer([*service_names, *SERVICE_NAMES], pool)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers([_v1_handler(servicer)])
    return servicer
