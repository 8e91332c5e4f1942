"""Pure computations over a trace's spans: no I/O and no terminal library.

``waterfall`` builds the span tree and everything a waterfall view draws from it (rows, tree
guides, time bars, the time ruler, durations); ``critical_path`` finds the chain of spans that
determined the trace's end-to-end latency.
"""
