"""tracedesk: a local, keyboard-driven OpenTelemetry trace viewer."""

__version__ = "0.1.0"
