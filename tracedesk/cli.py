"""Command line: the app, ``serve``, ``demo``, the ``bench`` commands, ``search``,
``export``, ``import``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from tracedesk import __version__
from tracedesk.config import DEMO_ENDPOINT, Settings, SettingsError

# Which settings each kind of command exposes as flags.
DB_FLAGS = ("db_path",)
LISTEN_FLAGS = ("host", "grpc_port", "http_port")
RECEIVER_FLAGS = ("max_age", "max_spans", "max_db_size", "max_body_size", "max_pending",
                  "token", "forward", "forward_headers", "forward_queue_size")
_FLAG_NAMES = {"db_path": "--db"}
_METAVARS = {"forward": "URL"}


def _add_settings_flags(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    by_name = {f.name: f for f in fields(Settings)}
    for name in names:
        f = by_name[name]
        flag = _FLAG_NAMES.get(name, "--" + name.replace("_", "-"))
        default = f.default_factory() if callable(f.default_factory) else f.default
        parser.add_argument(
            flag, dest=name, default=None,
            metavar=_METAVARS.get(name, name.split("_")[-1].upper()),
            help=f"{f.metadata['help']} [env {f.metadata['env']}; default {default}]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracedesk",
        description="A local OpenTelemetry receiver and trace viewer. Without a command it "
                    "opens the app and runs the receiver for its database. Point any OTLP "
                    "exporter at localhost:4317 (gRPC) or localhost:4318 (HTTP).",
    )
    parser.add_argument("--version", action="version", version=f"tracedesk {__version__}")
    parser.add_argument("--no-receiver", action="store_true",
                        help="only view the database; do not start or attach to a receiver")
    _add_settings_flags(parser, DB_FLAGS + LISTEN_FLAGS + RECEIVER_FLAGS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser(
        "serve", help="run the OTLP receiver headless, storing into the database",
        description="Receive OTLP traces, logs and metrics over gRPC and HTTP and store them "
                    "in SQLite until interrupted (Ctrl-C or SIGTERM).")
    _add_settings_flags(serve, DB_FLAGS + LISTEN_FLAGS + RECEIVER_FLAGS)
    # Set by the app for the receiver it starts: stop when the app's end of stdin closes.
    serve.add_argument("--stop-on-stdin-eof", action="store_true", help=argparse.SUPPRESS)

    demo = sub.add_parser(
        "demo", help="send realistic telemetry from a fictional shop to a receiver",
        description="Simulate a small shop (frontend, checkout, payments, inventory, a "
                    "database and a queue) and send its traces, logs and metrics over OTLP.")
    demo.add_argument("--endpoint", default=DEMO_ENDPOINT,
                      help=f"OTLP/gRPC receiver address [default {DEMO_ENDPOINT}]")
    demo.add_argument("--rate", type=float, default=5.0,
                      help="traces per second [default 5]")
    demo.add_argument("--duration", type=float, default=0.0,
                      help="seconds to run; 0 runs until Ctrl-C [default 0]")
    demo.add_argument("--seed", type=int, default=None, help="random seed, for repeatable runs")
    demo.add_argument("--token", default=None,
                      help="bearer token the receiver requires [env TRACEDESK_TOKEN]")

    bench = sub.add_parser(
        "bench", help="measure ingest throughput, latency and memory",
        description="Start a receiver on free ports with a temporary database, drive it over "
                    "OTLP/gRPC from separate client processes, and report accepted spans/s, "
                    "Export latency and the receiver's peak memory.")
    bench.add_argument("--spans", type=int, default=300_000, help="spans per run")
    bench.add_argument("--batch", type=int, default=512, help="spans per Export request")
    bench.add_argument("--senders", type=int, default=1, help="client processes")
    bench.add_argument("--runs", type=int, default=3, help="runs; the median is reported")
    bench.add_argument("--json", action="store_true", help="print the result as JSON")

    bench_app = sub.add_parser(
        "bench-app", help="measure the app's responsiveness against its targets",
        description="Drive the real app headless over a generated database and report, as "
                    "medians and p95, start-up, list and trace load times, key → frame "
                    "latency, and key latency while a receiver ingests 5,000 spans/s.")
    bench_app.add_argument("--traces", type=int, default=100_000, help="traces to store")
    bench_app.add_argument("--trace-spans", type=int, default=10_000,
                           help="spans of the one large trace")
    bench_app.add_argument("--runs", type=int, default=3, help="repetitions of each measurement")
    bench_app.add_argument("--presses", type=int, default=10,
                           help="presses of each key group per run")
    bench_app.add_argument("--load-seconds", type=float, default=10.0,
                           help="seconds of key presses under load, per run")
    bench_app.add_argument("--keep", type=Path, default=None, metavar="DIR",
                           help="build the database in DIR once and reuse it on later runs")
    bench_app.add_argument("--json", action="store_true", help="print the result as JSON")

    bench_views = sub.add_parser(
        "bench-views", help="measure the Services, RED and Logs screens against their targets",
        description="Drive the real app headless over a generated database of demo spans and "
                    "log records (the last hour's) and report, as medians and p95, how soon "
                    "the Services screen and an operation's RED panel are ready, how soon "
                    "the Logs screen opens, and key → frame latency when paging its list.")
    bench_views.add_argument("--spans", type=int, default=1_000_000,
                             help="spans to store [default 1,000,000]")
    bench_views.add_argument("--logs", type=int, default=1_000_000,
                             help="log records to store [default 1,000,000]")
    bench_views.add_argument("--runs", type=int, default=3,
                             help="app runs; each opens every screen 3 times")
    bench_views.add_argument("--presses", type=int, default=10,
                             help="presses of each paging key group per run")
    bench_views.add_argument("--keep", type=Path, default=None, metavar="DIR",
                             help="build the database in DIR once and reuse it on later runs")
    bench_views.add_argument("--json", action="store_true", help="print the result as JSON")

    bench_writer = sub.add_parser(
        "bench-writer", help="measure the writer alone, per span, at a database size",
        description="Store --stored spans of the shop `bench` sends, then time --spans more "
                    "per run through the real writer (group commits, background checkpoint) "
                    "and split the time by SQL statement.")
    bench_writer.add_argument("--stored", type=int, default=1_000_000,
                              help="spans stored before timing [default 1,000,000]")
    bench_writer.add_argument("--spans", type=int, default=100_000,
                              help="spans timed per run [default 100,000]")
    bench_writer.add_argument("--runs", type=int, default=3, help="timed runs")
    bench_writer.add_argument("--eager", action="store_true",
                              help="spans converted at decode, as a quiet receiver stores "
                                   "them (default: deferred, as under load)")
    bench_writer.add_argument("--json", action="store_true", help="print the result as JSON")

    bench_search = sub.add_parser(
        "bench-search", help="measure how fast queries return their first page",
        description="Build (or reuse, with --keep) a database of demo traces and time TraceQL "
                    "queries of each kind (service, name, status, duration, attribute, regex): "
                    "the newest 20 matches, as medians, against their targets.")
    bench_search.add_argument("--spans", type=int, default=1_000_000,
                              help="spans to store [default 1,000,000]")
    bench_search.add_argument("--runs", type=int, default=5, help="runs of each query")
    bench_search.add_argument("--keep", type=Path, default=None, metavar="DIR",
                              help="build the database in DIR once and reuse it")
    bench_search.add_argument("--json", action="store_true", help="print the result as JSON")

    search = sub.add_parser(
        "search", help="list the traces a TraceQL query matches",
        description="Print the stored traces that QUERY matches: trace id, root service, root "
                    "span, start, duration and how many spans matched. QUERY is a TraceQL "
                    "subset, e.g. '{ resource.service.name = \"checkout\" && duration > "
                    "200ms }', '{ status = error } && { kind = client }', or plain words "
                    "searched in span and service names.")
    search.add_argument("query", metavar="QUERY", help="a TraceQL query or plain words")
    search.add_argument("--since", default="1h", metavar="AGE",
                        help="only traces that started this long ago or later (30m, 24h, 7d; "
                             "0 = all) [default 1h]")
    search.add_argument("--limit", type=int, default=20, help="most traces to list [default 20]")
    search.add_argument("--by-duration", action="store_true",
                        help="slowest first instead of newest first")
    search.add_argument("--json", action="store_true",
                        help="print a JSON array of objects (trace_id, root_service_name, ...)")
    _add_settings_flags(search, DB_FLAGS)

    export = sub.add_parser(
        "export", help="write a stored trace as OTLP JSON",
        description="Write one stored trace as an OTLP/JSON ExportTraceServiceRequest, which "
                    "any OTLP/HTTP receiver accepts (POST it to /v1/traces).")
    export.add_argument("trace_id", metavar="TRACE_ID",
                        help="the trace id, or a prefix of it that only one trace has")
    export.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                        help="write to FILE (overwritten) instead of standard output")
    _add_settings_flags(export, DB_FLAGS)

    import_ = sub.add_parser(
        "import", help="store traces, logs and metrics from OTLP files",
        description="Store the telemetry in OTLP JSON files (one Export request), JSON-lines "
                    "files as the Collector's file exporter writes them, and protobuf files "
                    "(.pb, .binpb), then report per file what was imported and rejected. "
                    "Exits 1 if anything was rejected or a file could not be read.")
    import_.add_argument("files", nargs="+", type=Path, metavar="FILE", help="files to import")
    _add_settings_flags(import_, DB_FLAGS)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {f.name: getattr(args, f.name, None) for f in fields(Settings)}
    return Settings.load(overrides)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            from tracedesk.ui.run import run_app

            return run_app(settings_from(args), start_receiver=not args.no_receiver)
        if args.command == "serve":
            from tracedesk.receiver.serve import serve

            return serve(settings_from(args), stop_on_stdin_eof=args.stop_on_stdin_eof)
        if args.command == "demo":
            from tracedesk.demo.run import run_demo

            return run_demo(args.endpoint, rate=args.rate, duration=args.duration,
                            seed=args.seed,
                            token=args.token or os.environ.get("TRACEDESK_TOKEN"))
        if args.command == "bench":
            from tracedesk.bench import run_bench

            return run_bench(spans=args.spans, batch=args.batch, senders=args.senders,
                             runs=args.runs, as_json=args.json)
        if args.command == "bench-app":
            from tracedesk.ui.bench import run_bench_app

            return run_bench_app(traces=args.traces, trace_spans=args.trace_spans,
                                 runs=args.runs, keep=args.keep,
                                 load_seconds=args.load_seconds, presses=args.presses,
                                 as_json=args.json)
        if args.command == "bench-views":
            from tracedesk.ui.bench_views import run_bench_views

            return run_bench_views(spans=args.spans, logs=args.logs, runs=args.runs,
                                   keep=args.keep, presses=args.presses, as_json=args.json)
        if args.command == "bench-writer":
            from tracedesk.bench_writer import run_bench_writer

            return run_bench_writer(stored=args.stored, spans=args.spans, runs=args.runs,
                                    eager=args.eager, as_json=args.json)
        if args.command == "bench-search":
            from tracedesk.bench_search import run_bench_search

            return run_bench_search(spans=args.spans, runs=args.runs, keep=args.keep,
                                    as_json=args.json)
        if args.command == "search":
            from tracedesk.config import parse_duration
            from tracedesk.search import run_search

            try:
                since = parse_duration(args.since)
            except ValueError as exc:
                parser.error(f"--since: {exc}")
            return run_search(settings_from(args).db_path, args.query, since_seconds=since,
                              limit=max(1, args.limit), by_duration=args.by_duration,
                              as_json=args.json)
        if args.command == "export":
            from tracedesk.transfer.commands import run_export

            return run_export(settings_from(args), args.trace_id, args.output)
        if args.command == "import":
            from tracedesk.transfer.commands import run_import

            return run_import(settings_from(args), args.files)
    except SettingsError as exc:
        print(f"tracedesk: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command}")
    return 2
