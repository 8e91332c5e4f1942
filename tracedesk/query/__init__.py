"""The search language: a subset of Grafana Tempo's TraceQL, plus plain-word search.

``parse(text)`` turns query text into a tree (``ast``); ``matching_spans`` and
``trace_matches`` (``evaluate``) say what it selects in one trace, in plain Python, as the
reference that the SQL compiler must agree with. Headless: no terminal library here.

Supported: spanset filters ``{ cond }`` and ``{}``; ``span.``, ``resource.`` and unscoped
``.`` attributes (dotted or quoted names); the intrinsics ``name status statusMessage kind
duration rootName rootServiceName traceDuration`` (and Tempo's ``span:``/``trace:``
spellings); ``= != > >= < <= =~ !~``; ``&& || !`` and parentheses; strings, integers, floats,
booleans, durations, status and kind names and ``nil``; spansets joined by ``&&``/``||``.
Text that does not start with ``{`` (after spaces and ``(``) is plain words instead: a trace
matches when each word, ignoring ASCII case, is part of some span's name or service name
(per trace, not per span, so ``checkout postgres`` finds a trace that touches both).

Not supported: structural operators (``>>``, ``>``, ``~``...), pipelines, aggregates,
arithmetic, event/link scopes.
"""

from tracedesk.query.ast import Query
from tracedesk.query.errors import QueryError
from tracedesk.query.evaluate import matching_spans, trace_matches
from tracedesk.query.format import to_text
from tracedesk.query.parser import parse
from tracedesk.query.spans import QuerySpan, TraceFacts, trace_facts

__all__ = ["Query", "QueryError", "QuerySpan", "TraceFacts", "matching_spans", "parse",
           "to_text", "trace_facts", "trace_matches"]
