"""The attribute index (``span_words``, schema 4): what removes spans' entries from it.

The index is contentless, so an entry can only be removed with the text it was made from;
every deletion of spans that the index already covers goes through here first. An entry
left behind does no harm to answers (queries check every candidate against the span) but
takes room, and the index must never miss a span: see ``Writer._write_spans`` for rowids
that come again.
"""

from __future__ import annotations

import sqlite3

_REMOVE = ("INSERT INTO span_words (span_words, rowid, attributes) "
           "SELECT 'delete', rowid, coalesce(attributes, span_attributes(raw)) FROM spans "
           "WHERE rowid <= (SELECT indexed_to FROM span_words_progress) AND ")


def forget_traces(conn: sqlite3.Connection, trace_refs_json: str) -> None:
    """Remove the entries of the spans of these traces (a JSON array of trace_refs)."""
    conn.execute(_REMOVE + "trace_ref IN (SELECT value FROM json_each(?))", (trace_refs_json,))


def forget_rows(conn: sqlite3.Connection, rowids_json: str) -> None:
    """Remove the entries of these spans (a JSON array of their rowids)."""
    conn.execute(_REMOVE + "rowid IN (SELECT value FROM json_each(?))", (rowids_json,))


def forget_all(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO span_words (span_words) VALUES ('delete-all')")
    conn.execute("UPDATE span_words_progress SET indexed_to = 0")
