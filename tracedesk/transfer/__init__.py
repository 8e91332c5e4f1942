"""Traces in and out as files: OTLP JSON export, and import of OTLP JSON, JSON lines and
protobuf files into the database. Headless: the CLI and the app both use it."""

from __future__ import annotations


class TransferError(Exception):
    """A problem the user can act on, said in one line (unknown trace id, unwritable file)."""
