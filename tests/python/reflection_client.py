"""A gRPC client nobody in this project wrote (grpcio + grpcio-reflection from PyPI) against a
running `taustar serve`: it discovers the services by reflection, builds the request and
reply types from the reflected descriptors alone (no .proto file, no generated code), calls
Coordinator.Status with the shared token, and checks the counts against `taustar status
--json`. It also checks that reflection itself needs the token.

    python3 tests/python/reflection_client.py HOST:PORT TOKEN_FILE STATUS_JSON

Exits non-zero, saying why, on any mismatch.
"""

import json
import sys

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase


class BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to every call (reflection is a bidi stream)."""

    def __init__(self, token):
        self.metadata = (("authorization", f"Bearer {token}"),)

    def _details(self, details):
        md = list(details.metadata or []) + list(self.metadata)
        return details._replace(metadata=md) if hasattr(details, "_replace") else _Details(details, md)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


class _Details(grpc.ClientCallDetails):
    def __init__(self, base, metadata):
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = getattr(base, "wait_for_ready", None)
        self.compression = getattr(base, "compression", None)


def fail(why):
    print(f"FAIL: {why}", file=sys.stderr)
    sys.exit(1)


def main():
    addr, token_file, status_file = sys.argv[1:4]
    token = open(token_file).read().strip()
    want = json.load(open(status_file))

    # Without the token reflection is refused.
    bare = ProtoReflectionDescriptorDatabase(grpc.insecure_channel(addr))
    try:
        bare.get_services()
        fail("reflection answered without the token")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.UNAUTHENTICATED:
            fail(f"reflection without the token: {e.code()}, expected UNAUTHENTICATED")
    print("ok   - reflection without the token is UNAUTHENTICATED")

    channel = grpc.intercept_channel(grpc.insecure_channel(addr), BearerToken(token))
    db = ProtoReflectionDescriptorDatabase(channel)
    services = set(db.get_services())
    for s in ("taustar.v1.Coordinator", "grpc.health.v1.Health"):
        if s not in services:
            fail(f"reflection lists {sorted(services)}, not {s}")
    print(f"ok   - reflection lists {sorted(services)}")

    pool = DescriptorPool(db)
    method = pool.FindServiceByName("taustar.v1.Coordinator").FindMethodByName("Status")
    request_type = message_factory.GetMessageClass(method.input_type)
    reply_type = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        "/taustar.v1.Coordinator/Status",
        request_serializer=request_type.SerializeToString,
        response_deserializer=reply_type.FromString,
    )
    reply = call(request_type(), timeout=10)
    print(f"ok   - Status from reflected types: {reply.study_name}, {reply.cells_done} of {reply.cells_total} done")
    for key in ("study_name", "cells_total", "cells_pending", "cells_leased", "cells_done", "cells_failed"):
        got = getattr(reply, key)
        if got != want[key]:
            fail(f"Status.{key} = {got!r} but taustar status --json says {want[key]!r}")
    print("ok   - Status agrees with taustar status --json")


if __name__ == "__main__":
    main()
