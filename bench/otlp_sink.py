"""An OTLP/gRPC trace receiver that accepts and drops spans, so benchmarks run with tracing
fully on (spans exported over the network) without a collector."""

from __future__ import annotations

from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class _Sink(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans = 0

    def Export(self, request, context):  # type: ignore[no-untyped-def]
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                self.spans += len(scope.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


def start(port: int) -> tuple[grpc.Server, _Sink]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    sink = _Sink()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, sink
