"""``tracedesk export`` and ``tracedesk import``: output, messages and exit codes."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from tracedesk.config import Settings
from tracedesk.store.reader import Reader
from tracedesk.store.schema import SchemaError
from tracedesk.transfer import TransferError
from tracedesk.transfer.export import export_trace, resolve_trace_id, write_file
from tracedesk.transfer.importer import ITEM_NAMES, FileReport, Importer, count
from tracedesk.transfer.progress import Progress


def _fail(message: str) -> int:
    print(f"tracedesk: {message}", file=sys.stderr)
    return 1


def run_export(settings: Settings, trace_id: str, output: Path | None) -> int:
    """Write the trace as OTLP/JSON to ``output`` (stdout if None); 1 with one line if the
    id is unknown or ambiguous, or the file cannot be written."""
    path = Path(settings.db_path)
    if not path.exists():
        return _fail(f"no database at {path} (choose one with --db)")
    try:
        reader = Reader(path)
    except (OSError, SchemaError) as exc:
        return _fail(f"cannot open {path}: {exc}")
    try:
        exported = export_trace(reader, resolve_trace_id(reader, trace_id))
        if output is None:
            sys.stdout.buffer.write(exported.data)
            sys.stdout.flush()
        else:
            write_file(output, exported.data)
            print(f"wrote trace {exported.trace_id} ({exported.span_count} spans) to {output}",
                  file=sys.stderr)
    except TransferError as exc:
        return _fail(str(exc))
    finally:
        reader.close()
    return 0


def run_import(settings: Settings, files: Sequence[Path]) -> int:
    """Import every file, then report each one; 0 only if nothing was rejected or unread."""
    try:
        importer = Importer(Path(settings.db_path))
    except (OSError, SchemaError) as exc:
        return _fail(f"cannot open {settings.db_path}: {exc}")
    sizes = [_size(f) for f in files]
    progress = Progress(sum(sizes))
    reports: list[FileReport] = []
    done = 0
    try:
        for path, size in zip(files, sizes, strict=True):
            label = path.name
            reports.append(importer.import_file(
                path, lambda n, base=done, label=label: progress.update(base + n, label)))
            done += size
    finally:
        progress.finish()
        importer.close()
    for report in reports:
        print("\n".join(report.lines()))
    if len(reports) > 1:
        print(_totals(reports))
    return 0 if all(r.ok for r in reports) else 1


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _totals(reports: Sequence[FileReport]) -> str:
    imported = ", ".join(count(sum(r.imported[signal] for r in reports), noun)
                         for signal, noun in ITEM_NAMES.items())
    bad = sum(1 for r in reports if not r.ok)
    return (f"total: {imported} imported from {len(reports)} files; "
            f"{count(bad, 'file')} with problems")
