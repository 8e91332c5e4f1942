"""The database schema and its forward migrations (``PRAGMA user_version``).

This is a public contract: users query these tables by hand. Change it only by appending
a migration. Ids are lowercase hex text, times are Unix nanoseconds, attribute maps are JSON.
"""

from __future__ import annotations

import sqlite3
from functools import lru_cache
from pathlib import Path

from tracedesk.otlp.traces import cold_columns
from tracedesk.query.evaluate import regex_full_match

# Each entry migrates from version i to i + 1.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE resources (
        resource_id INTEGER PRIMARY KEY,   -- hash of the attribute set
        service_name TEXT NOT NULL,
        attributes TEXT NOT NULL,          -- JSON object
        schema_url TEXT NOT NULL DEFAULT ''
    );

    CREATE TABLE spans (
        trace_id TEXT NOT NULL,            -- 32 hex chars
        span_id TEXT NOT NULL,             -- 16 hex chars
        parent_span_id TEXT NOT NULL,      -- '' for a root span
        name TEXT NOT NULL,
        kind INTEGER NOT NULL,             -- OTLP SpanKind number
        service_name TEXT NOT NULL,
        start_time_unix_nano INTEGER NOT NULL,
        end_time_unix_nano INTEGER NOT NULL,
        duration_ns INTEGER NOT NULL,
        status_code INTEGER NOT NULL,      -- 0 unset, 1 ok, 2 error
        status_message TEXT NOT NULL,
        attributes TEXT NOT NULL,          -- JSON object
        events TEXT NOT NULL,              -- JSON array
        links TEXT NOT NULL,               -- JSON array
        resource_id INTEGER NOT NULL,
        scope_name TEXT NOT NULL,
        scope_version TEXT NOT NULL,
        trace_state TEXT NOT NULL,
        flags INTEGER NOT NULL,
        UNIQUE (trace_id, span_id)
    );

    -- One row per trace, kept current by the writer. seq grows with every change, so a
    -- reader asks "WHERE seq > ?" to learn what changed since it last looked.
    CREATE TABLE traces (
        trace_id TEXT PRIMARY KEY,
        start_time_unix_nano INTEGER NOT NULL,
        end_time_unix_nano INTEGER NOT NULL,
        duration_ns INTEGER NOT NULL,
        root_service_name TEXT NOT NULL,
        root_span_name TEXT NOT NULL,
        root_span_id TEXT NOT NULL,
        has_root INTEGER NOT NULL,         -- 0 while the root span has not arrived
        span_count INTEGER NOT NULL,
        error_count INTEGER NOT NULL,
        services TEXT NOT NULL,            -- JSON array of service names
        seq INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX traces_by_start ON traces (start_time_unix_nano);
    CREATE INDEX traces_by_seq ON traces (seq);

    CREATE TABLE logs (
        log_id INTEGER PRIMARY KEY,        -- grows with arrival
        time_unix_nano INTEGER NOT NULL,   -- the record's time, or its observed time if unset
        observed_time_unix_nano INTEGER NOT NULL,
        severity_number INTEGER NOT NULL,
        severity_text TEXT NOT NULL,
        body TEXT NOT NULL,                -- JSON value
        attributes TEXT NOT NULL,          -- JSON object
        trace_id TEXT NOT NULL,            -- '' when the record is not tied to a trace
        span_id TEXT NOT NULL,
        service_name TEXT NOT NULL,
        resource_id INTEGER NOT NULL,
        scope_name TEXT NOT NULL,
        event_name TEXT NOT NULL,
        flags INTEGER NOT NULL
    );
    CREATE INDEX logs_by_time ON logs (time_unix_nano);
    CREATE INDEX logs_by_trace ON logs (trace_id, span_id) WHERE trace_id != '';

    CREATE TABLE metric_points (
        point_id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        unit TEXT NOT NULL,
        type TEXT NOT NULL,     -- gauge, sum, histogram, exponential_histogram, summary
        temporality TEXT,       -- delta, cumulative, or NULL
        is_monotonic INTEGER,   -- sums only
        service_name TEXT NOT NULL,
        resource_id INTEGER NOT NULL,
        scope_name TEXT NOT NULL,
        start_time_unix_nano INTEGER NOT NULL,
        time_unix_nano INTEGER NOT NULL,
        value REAL,             -- gauge and sum points
        count INTEGER,          -- histogram and summary points
        sum REAL,
        min REAL,
        max REAL,
        buckets TEXT,           -- JSON, histogram shapes (see README)
        attributes TEXT NOT NULL,
        exemplars TEXT NOT NULL, -- JSON array; trace_id/span_id link a point to a trace
        flags INTEGER NOT NULL
    );
    CREATE INDEX metric_points_by_name ON metric_points (name, time_unix_nano);
    CREATE INDEX metric_points_by_time ON metric_points (time_unix_nano);
    """,
    # 1 → 2: the trace list can sort by duration without scanning every trace.
    """
    CREATE INDEX traces_by_duration ON traces (duration_ns);
    """,
    # 2 → 3: spans stored under load keep their protobuf bytes (raw) until the writer has
    # converted their attributes, events and links, which are NULL meanwhile. SQLite cannot
    # relax NOT NULL in place, so the table is rebuilt.
    """
    CREATE TABLE spans_v3 (
        trace_id TEXT NOT NULL,
        span_id TEXT NOT NULL,
        parent_span_id TEXT NOT NULL,
        name TEXT NOT NULL,
        kind INTEGER NOT NULL,
        service_name TEXT NOT NULL,
        start_time_unix_nano INTEGER NOT NULL,
        end_time_unix_nano INTEGER NOT NULL,
        duration_ns INTEGER NOT NULL,
        status_code INTEGER NOT NULL,
        status_message TEXT NOT NULL,
        attributes TEXT,                   -- JSON object; NULL while raw holds it
        events TEXT,                       -- JSON array; NULL while raw holds it
        links TEXT,                        -- JSON array; NULL while raw holds it
        raw BLOB,                          -- the OTLP Span, until converted; else NULL
        resource_id INTEGER NOT NULL,
        scope_name TEXT NOT NULL,
        scope_version TEXT NOT NULL,
        trace_state TEXT NOT NULL,
        flags INTEGER NOT NULL,
        UNIQUE (trace_id, span_id)
    );
    INSERT INTO spans_v3
        SELECT trace_id, span_id, parent_span_id, name, kind, service_name,
               start_time_unix_nano, end_time_unix_nano, duration_ns, status_code,
               status_message, attributes, events, links, NULL, resource_id, scope_name,
               scope_version, trace_state, flags
        FROM spans ORDER BY rowid;
    DROP TABLE spans;
    ALTER TABLE spans_v3 RENAME TO spans;
    -- Where the writer resumes converting: no span below this rowid holds raw bytes. No row
    -- when none does. (An index of the deferred spans would cost every insert.)
    CREATE TABLE deferred_spans (from_rowid INTEGER NOT NULL);
    """,
    # 3 → 4: a full-text index of span attributes, so that an attribute equality finds its
    # few spans without reading every span's JSON. The writer fills it in the spans' rowid
    # order when idle (span_words_progress: spans up to this rowid are in it; spans above
    # are scanned). Contentless: it holds only tokens, and removing a span's entry needs
    # its text: whoever deletes spans removes their entries first (see store.span_words).
    # A trigger would do it for every deletion, but it slows every insert by a third.
    """
    CREATE VIRTUAL TABLE span_words USING fts5(attributes, content='');
    CREATE TABLE span_words_progress (indexed_to INTEGER NOT NULL);
    INSERT INTO span_words_progress VALUES (0);
    """,
    # 4 → 5: block ranges of span start times, so a time window reads only the rowids that
    # can hold it (see store.span_blocks). Spans already stored get blocks of 4096 rowids.
    """
    CREATE TABLE span_blocks (
        first_rowid INTEGER NOT NULL,
        last_rowid INTEGER NOT NULL,
        min_start INTEGER NOT NULL,
        max_start INTEGER NOT NULL
    );
    INSERT INTO span_blocks
        SELECT min(rowid), max(rowid), min(start_time_unix_nano), max(start_time_unix_nano)
        FROM spans GROUP BY rowid >> 12;
    """,
    # 5 → 6: spans are found by their trace's number (traces.trace_ref, given in arrival
    # order), not by a unique index on (trace_id, span_id). That index of two random texts
    # took most of the writer's time, and more as it outgrew the cache: each commit wrote a
    # leaf page per new span, all over the file. An index on (trace_ref, span_id) grows at
    # its end. The writer keeps a span unique itself (a span sent again replaces the stored
    # one). The rebuild keeps the spans' rowids: span_words and span_blocks refer to them.
    """
    ALTER TABLE traces ADD COLUMN trace_ref INTEGER NOT NULL DEFAULT 0;
    UPDATE traces SET trace_ref = numbered.ref
    FROM (SELECT trace_id, row_number() OVER (ORDER BY seq, trace_id) AS ref FROM traces)
        AS numbered
    WHERE traces.trace_id = numbered.trace_id;
    CREATE INDEX traces_by_ref ON traces (trace_ref);
    CREATE TABLE spans_v6 (
        trace_id TEXT NOT NULL,
        span_id TEXT NOT NULL,
        parent_span_id TEXT NOT NULL,
        name TEXT NOT NULL,
        kind INTEGER NOT NULL,
        service_name TEXT NOT NULL,
        start_time_unix_nano INTEGER NOT NULL,
        end_time_unix_nano INTEGER NOT NULL,
        duration_ns INTEGER NOT NULL,
        status_code INTEGER NOT NULL,
        status_message TEXT NOT NULL,
        attributes TEXT,
        events TEXT,
        links TEXT,
        raw BLOB,
        resource_id INTEGER NOT NULL,
        scope_name TEXT NOT NULL,
        scope_version TEXT NOT NULL,
        trace_state TEXT NOT NULL,
        flags INTEGER NOT NULL,
        trace_ref INTEGER NOT NULL DEFAULT 0   -- traces.trace_ref of this span's trace
    );
    INSERT INTO spans_v6 (rowid, trace_id, span_id, parent_span_id, name, kind, service_name,
                          start_time_unix_nano, end_time_unix_nano, duration_ns, status_code,
                          status_message, attributes, events, links, raw, resource_id,
                          scope_name, scope_version, trace_state, flags, trace_ref)
        SELECT s.rowid, s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind,
               s.service_name, s.start_time_unix_nano, s.end_time_unix_nano, s.duration_ns,
               s.status_code, s.status_message, s.attributes, s.events, s.links, s.raw,
               s.resource_id, s.scope_name, s.scope_version, s.trace_state, s.flags,
               coalesce(t.trace_ref, 0)
        FROM spans AS s LEFT JOIN traces AS t ON t.trace_id = s.trace_id ORDER BY s.rowid;
    DROP TABLE spans;
    ALTER TABLE spans_v6 RENAME TO spans;
    CREATE INDEX spans_by_trace ON spans (trace_ref, span_id);
    """,
    # 6 → 7: traces are stored in arrival order (trace_ref is the rowid), not in trace_id
    # order. New traces have random ids: each commit wrote a leaf page of whole rows per
    # new trace, all over the table. Rows are now appended; only the narrow trace_id index
    # takes random inserts. Column order is kept.
    """
    CREATE TABLE traces_v7 (
        trace_id TEXT NOT NULL UNIQUE,
        start_time_unix_nano INTEGER NOT NULL,
        end_time_unix_nano INTEGER NOT NULL,
        duration_ns INTEGER NOT NULL,
        root_service_name TEXT NOT NULL,
        root_span_name TEXT NOT NULL,
        root_span_id TEXT NOT NULL,
        has_root INTEGER NOT NULL,         -- 0 while the root span has not arrived
        span_count INTEGER NOT NULL,
        error_count INTEGER NOT NULL,
        services TEXT NOT NULL,            -- JSON array of service names
        seq INTEGER NOT NULL,
        trace_ref INTEGER PRIMARY KEY      -- arrival number; spans.trace_ref refers to it
    );
    INSERT INTO traces_v7 (trace_id, start_time_unix_nano, end_time_unix_nano, duration_ns,
                           root_service_name, root_span_name, root_span_id, has_root,
                           span_count, error_count, services, seq, trace_ref)
        SELECT trace_id, start_time_unix_nano, end_time_unix_nano, duration_ns,
               root_service_name, root_span_name, root_span_id, has_root, span_count,
               error_count, services, seq, trace_ref
        FROM traces ORDER BY trace_ref;
    DROP TABLE traces;
    ALTER TABLE traces_v7 RENAME TO traces;
    CREATE INDEX traces_by_start ON traces (start_time_unix_nano);
    CREATE INDEX traces_by_seq ON traces (seq);
    CREATE INDEX traces_by_duration ON traces (duration_ns);
    """,
    # 7 → 8: the service graph's counts per time slice, kept by the writer (see
    # store.graph_rollups); derived from spans, so it starts empty and fills itself.
    """
    CREATE TABLE graph_rollups (
        slice_start INTEGER PRIMARY KEY,   -- Unix ns, a multiple of the slice length
        counts BLOB NOT NULL               -- JSON: its edges and latency histograms;
                                           -- empty: too dense to roll up
    );
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


class SchemaError(RuntimeError):
    """The database was written by a newer tracedesk, or is not a tracedesk database."""


def connect(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with tracedesk's pragmas. Writers get the schema migrated first."""
    path = Path(path)
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    _add_functions(conn)
    if not readonly:
        # Lets retention hand freed pages back to the file system (new databases only).
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        # WAL + NORMAL: a commit is in the OS's hands when it returns, so it survives the
        # process being killed; only a power cut can lose the last commits.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB
        migrate(conn)
    return conn


# The three columns of one span are usually asked for together: parse its bytes once.
_cold_columns = lru_cache(maxsize=256)(cold_columns)


def _cold_column(index: int):
    def column(raw: bytes | None) -> str | None:
        return None if raw is None else _cold_columns(raw)[index]
    return column


def _add_functions(conn: sqlite3.Connection) -> None:
    """``span_attributes(raw)``, ``span_events(raw)``, ``span_links(raw)``: the JSON of a
    span whose conversion was deferred, so that readers can ask for
    ``coalesce(attributes, span_attributes(raw))`` and never see the difference."""
    for number, name in enumerate(("span_attributes", "span_events", "span_links")):
        conn.create_function(name, 1, _cold_column(number), deterministic=True)
    conn.create_function("regexp_full", 2, _regexp_full, deterministic=True)


def _regexp_full(pattern: str, value: object) -> int:
    """TraceQL's ``=~``: the whole text value matches (the query evaluator's own rule)."""
    return int(isinstance(value, str) and regex_full_match(pattern, value))


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema up to date, atomically, even if two processes start at once."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"this database has schema version {version}; this tracedesk knows up to "
                f"{SCHEMA_VERSION}. Upgrade tracedesk or choose another file with --db."
            )
        if version == 0:
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
            if tables.fetchone()[0]:
                raise SchemaError("this file holds tables but is not a tracedesk database; "
                                  "choose another file with --db")
        for script in MIGRATIONS[version:]:
            for statement in _statements(script):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (executescript would commit on its own)."""
    out, current = [], []
    for line in script.splitlines():
        current.append(line.split("--", 1)[0])
        text = "\n".join(current).strip()
        if text.endswith(";") and sqlite3.complete_statement(text):
            out.append(text)
            current = []
    return out
