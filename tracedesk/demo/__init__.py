"""`tracedesk demo`: a fictional shop's telemetry, sent over OTLP/gRPC."""

from tracedesk.demo.shop import Shop

__all__ = ["Shop"]
