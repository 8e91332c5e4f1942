"""The OTLP receiver: gRPC and HTTP servers, the ingest hand-off, the `serve` lifecycle."""
