"""Read-only queries over log records, newest first, for the logs screen and the trace screen.

The list order is (time, log_id) descending, which the ``logs_by_time`` index serves as it is
(an index entry ends with the rowid), so pages never sort.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from tracedesk.model import LogRecord
from tracedesk.store.paging import nearer_end, reversed_order
from tracedesk.store.reader import Reader

LOG_FIELDS = ("log_id, time_unix_nano, observed_time_unix_nano, severity_number, "
              "severity_text, body, attributes, trace_id, span_id, service_name, resource_id, "
              "scope_name, event_name")
NEWEST_FIRST = "time_unix_nano DESC, log_id DESC"

# OTLP severity numbers come in ranges of four: 1-4 TRACE ... 21-24 FATAL.
SEVERITY_NAMES = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")


def severity_name(number: int, text: str = "") -> str:
    """The record's level: from its number's range, else its own text, else "-"."""
    if 1 <= number <= 24:
        return SEVERITY_NAMES[(number - 1) // 4]
    return text.upper()[:5] if text else "-"


def severity_floor(name: str) -> int:
    """The lowest severity number of a level name (``"WARN"`` is 13)."""
    return SEVERITY_NAMES.index(name) * 4 + 1


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Minimum severity (0: all, records without a level too), one service, and text that
    the body or the service name contains."""

    min_severity: int = 0
    service: str = ""
    text: str = ""

    def sql(self) -> tuple[str, tuple]:
        terms, args = [], []
        if self.min_severity:
            terms.append("severity_number >= ?")
            args.append(self.min_severity)
        if self.service:
            terms.append("service_name = ?")
            args.append(self.service)
        if self.text:
            escaped = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            terms.append("(body LIKE ? ESCAPE '\\' OR service_name LIKE ? ESCAPE '\\')")
            args += [f"%{escaped}%"] * 2
        return (" WHERE " + " AND ".join(terms) if terms else ""), tuple(args)

    def describe(self) -> str:
        parts = []
        if self.min_severity:
            parts.append(f"level ≥ {severity_name(self.min_severity)}")
        if self.service:
            parts.append(f"service {self.service}")
        if self.text:
            parts.append(f"text {self.text}")
        return ", ".join(parts)


def _record(row: tuple) -> LogRecord:
    return LogRecord(row[0], row[1], row[2], row[3], row[4], orjson.loads(row[5]),
                     orjson.loads(row[6]), row[7], row[8], row[9], row[10], row[11], row[12])


def _and(clause: str) -> str:
    return " AND" if clause else " WHERE"


def log_count(reader: Reader, where: LogFilter = LogFilter()) -> int:
    clause, args = where.sql()
    return reader.conn.execute(f"SELECT count(*) FROM logs{clause}", args).fetchone()[0]


def log_page(reader: Reader, offset: int, limit: int, where: LogFilter = LogFilter(),
             total: int | None = None) -> list[LogRecord]:
    """Rows ``[offset, offset + limit)``, newest first; with the list's ``total``, a page past
    the middle is read from the oldest end (see ``paging``)."""
    clause, args = where.sql()
    backwards, skip, take = nearer_end(offset, limit, total)
    inner = reversed_order(NEWEST_FIRST) if backwards else NEWEST_FIRST
    # Skip rows in the index alone (unfiltered), then read only the page's rows.
    rows = reader.conn.execute(
        f"SELECT {LOG_FIELDS} FROM logs WHERE log_id IN (SELECT log_id FROM logs{clause} "
        f"ORDER BY {inner} LIMIT {int(take)} OFFSET {int(skip)}) ORDER BY {NEWEST_FIRST}",
        args)
    return [_record(r) for r in rows]


def logs_before(reader: Reader, record: LogRecord, where: LogFilter = LogFilter()) -> int:
    """How many records come before ``record`` in the list (newer ones): its row."""
    clause, args = where.sql()
    return reader.conn.execute(
        f"SELECT count(*) FROM logs{clause}{_and(clause)} (time_unix_nano > ? OR "
        "(time_unix_nano = ? AND log_id > ?))",
        (*args, record.time_unix_nano, record.time_unix_nano, record.log_id)).fetchone()[0]


def trace_logs(reader: Reader, trace_id: str, limit: int = 10_000) -> list[LogRecord]:
    """A trace's log records, oldest first (the ``logs_by_trace`` index finds them)."""
    rows = reader.conn.execute(
        f"SELECT {LOG_FIELDS} FROM logs WHERE trace_id = ? AND trace_id != '' "
        f"ORDER BY time_unix_nano, log_id LIMIT {int(limit)}", (trace_id,))
    return [_record(r) for r in rows]



def trace_log_count(reader: Reader, trace_id: str) -> int:
    return reader.conn.execute("SELECT count(*) FROM logs WHERE trace_id = ? AND trace_id != ''",
                               (trace_id,)).fetchone()[0]
