"""Files → the database: decode each request as the receiver does, store it with the writer.

Writes go straight into the SQLite file in short transactions (a few thousand records),
so a receiver running on the same database waits at most a moment for its own commits.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from tracedesk.otlp import DecodedBatch, PayloadError, ResourceTable, Signal, decode
from tracedesk.store.writer import Writer
from tracedesk.transfer.sources import Body, Malformed, json_signals, protobuf_signal, read_bodies

CHUNK_RECORDS = 5000  # records per transaction
CHUNK_SECONDS = 0.25  # and at most this long holding the write lock
MAX_PROBLEMS = 20  # problems listed per file; the rest are counted

ITEM_NAMES = {Signal.TRACES: "span", Signal.LOGS: "log record", Signal.METRICS: "metric point"}


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@dataclass
class FileReport:
    """What one file brought: records stored, records rejected, requests unreadable."""

    path: Path
    imported: dict[Signal, int] = field(default_factory=lambda: dict.fromkeys(Signal, 0))
    rejected: dict[Signal, int] = field(default_factory=lambda: dict.fromkeys(Signal, 0))
    malformed: int = 0  # lines, messages or whole files that are no request at all
    problems: list[str] = field(default_factory=list)
    unlisted: int = 0  # problems beyond MAX_PROBLEMS
    error: str | None = None  # the file could not be read (or stored) to the end

    @property
    def ok(self) -> bool:
        return self.error is None and not self.malformed and not any(self.rejected.values())

    def problem(self, where: str, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{where}: {message}" if where else message)
        else:
            self.unlisted += 1

    def summary(self) -> str:
        """``f.json: 3 spans, 0 log records, 2 metric points imported; rejected 1 span``."""
        if self.error and not any(self.imported.values()) and not self.problems:
            return f"{self.path}: {self.error}"
        done = ", ".join(count(self.imported[s], ITEM_NAMES[s]) for s in Signal)
        rejected = [count(n, ITEM_NAMES[s]) for s, n in self.rejected.items() if n]
        text = f"{self.path}: {done} imported"
        if rejected:
            text += "; rejected " + ", ".join(rejected)
        if self.malformed:
            text += f"; {count(self.malformed, 'request')} unreadable"
        if self.error:
            text += f"; stopped: {self.error}"
        return text

    def lines(self) -> list[str]:
        """The summary, then one indented line per problem."""
        out = [self.summary(), *(f"  {p}" for p in self.problems)]
        if self.unlisted:
            out.append(f"  … and {count(self.unlisted, 'more problem')}")
        return out


class Importer:
    """Imports files into one database; one writer connection for all of them."""

    def __init__(self, db_path: Path) -> None:
        self.writer = Writer(db_path)
        self.resources = ResourceTable()
        self._pending = 0
        self._chunk_started: float | None = None

    def close(self) -> None:
        self.writer.close()

    def import_file(self, path: Path, progress: Callable[[int], None] | None = None
                    ) -> FileReport:
        """Import every request of ``path``; ``progress`` gets the bytes read so far."""
        report = FileReport(path)
        try:
            for item in read_bodies(path):
                if isinstance(item, Malformed):
                    report.malformed += 1
                    report.problem(item.where, item.reason)
                else:
                    self._import_body(item, report)
                if progress is not None:
                    progress(item.position)
            self._commit()
        except OSError as exc:
            report.error = f"cannot read: {exc.strerror or exc}"
            self._commit()
        except sqlite3.Error as exc:
            self.writer.rollback()
            self._chunk_started = None
            report.error = f"cannot store: {exc}"
        return report

    def _import_body(self, body: Body, report: FileReport) -> None:
        if body.json:
            try:
                tree = orjson.loads(body.data)
            except orjson.JSONDecodeError as exc:
                report.malformed += 1
                report.problem(body.where, f"invalid JSON: {exc}")
                return
            signals = json_signals(tree) if isinstance(tree, dict) else []
            if not signals:
                report.malformed += 1
                report.problem(body.where, "not an OTLP request (no resourceSpans, "
                                           "resourceLogs or resourceMetrics)")
                return
        else:
            signal = protobuf_signal(body.data)
            if signal is None:
                report.malformed += 1
                report.problem(body.where, "not an OTLP protobuf Export request (tried "
                                           "traces, logs and metrics)")
                return
            signals = [signal]
        for signal in signals:
            try:
                batch = decode(signal, body.data, self.resources, json=body.json)
            except PayloadError as exc:
                report.malformed += 1
                report.problem(body.where, str(exc))
                continue
            self._store(batch)
            report.imported[signal] += batch.accepted
            report.rejected[signal] += batch.rejected
            for message in batch.messages:
                report.problem(body.where, message)
            if batch.rejected > len(batch.messages):
                report.problem(body.where, f"… {batch.rejected - len(batch.messages)} more "
                                           f"{ITEM_NAMES[signal]}s rejected")

    def _store(self, batch: DecodedBatch) -> None:
        if not batch.accepted:
            return
        if self._chunk_started is None:
            self.writer.begin()
            # Another writer (a running receiver) may have moved the change counter on:
            # continue above it, so that readers polling "seq > ?" see these traces.
            stored = self.writer.conn.execute(
                "SELECT coalesce(max(seq), 0) FROM traces").fetchone()[0]
            self.writer.seq = max(self.writer.seq, stored)
            self._chunk_started = time.monotonic()
        self.writer.apply(batch)
        self._pending += batch.accepted
        if (self._pending >= CHUNK_RECORDS
                or time.monotonic() - self._chunk_started >= CHUNK_SECONDS):
            self._commit()

    def _commit(self) -> None:
        if self._chunk_started is not None:
            self.writer.commit()
        self._chunk_started = None
        self._pending = 0
