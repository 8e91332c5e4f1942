"""ExportLogsServiceRequest → log rows."""

from __future__ import annotations

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from tracedesk.otlp.batch import DecodedBatch
from tracedesk.otlp.values import (
    MAX_INT64,
    ResourceTable,
    any_value,
    attributes_json,
    hex_id,
    to_json,
)


def decode_logs(
    request: ExportLogsServiceRequest, resources: ResourceTable, batch: DecodedBatch | None = None
) -> DecodedBatch:
    batch = batch if batch is not None else DecodedBatch()
    for rl in request.resource_logs:
        res = resources.lookup(rl.resource, rl.schema_url)
        resource_id, service = res[0], res[1]
        batch.add_resource(res)
        for sl in rl.scope_logs:
            scope_name = sl.scope.name
            for r in sl.log_records:
                trace_id = hex_id(r.trace_id, 16)
                span_id = hex_id(r.span_id, 8)
                if trace_id is None or span_id is None:
                    batch.reject(
                        f"log record: invalid trace_id ({len(r.trace_id)} bytes) or span_id "
                        f"({len(r.span_id)} bytes); want 16 and 8 bytes, or none"
                    )
                    continue
                # A record without a time is placed at the time the sender observed it.
                when = r.time_unix_nano or r.observed_time_unix_nano
                if when > MAX_INT64 or r.observed_time_unix_nano > MAX_INT64:
                    batch.reject("log record: time or observed time over 2**63 - 1 ns")
                    continue
                body = to_json(any_value(r.body)) if r.HasField("body") else "null"
                batch.logs.append((
                    when, r.observed_time_unix_nano, r.severity_number, r.severity_text, body,
                    attributes_json(r.attributes), trace_id, span_id, service, resource_id,
                    scope_name, getattr(r, "event_name", ""), r.flags,
                ))
    return batch
