"""structlog set-up: JSON lines for machines, colours for people on a terminal.

The console format is coloured only when stdout is a terminal: written to a pipe or a
file (a container's log, `kubectl logs`), escape codes would be noise in every line.
Each line reaches stdout in one write, so lines stay whole when another writer shares it.

Per-request values (rpc method, order id...) are bound with
``structlog.contextvars`` so every line written while serving carries them,
and, when tracing is on, the current span's ``trace_id`` and ``span_id``.
"""

from __future__ import annotations

import logging
import sys

import structlog
from opentelemetry import trace

from shop_grpc.config import LogSettings


def configure(settings: LogSettings, **static: str) -> None:
    """Configure logging once per process; `static` values go on every line."""
    on_terminal = sys.stdout.isatty()
    as_json = settings.format == "json" or (settings.format == "auto" and not on_terminal)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=on_terminal)
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**static)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_trace_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[settings.level.upper()]
        ),
        # One write per line, newline included: with PYTHONUNBUFFERED (the images, `shop up`)
        # print() writes the line and its newline apart, and whatever shares the stream (gRPC
        # core's notices, an exporter's warnings) could land between them, breaking the line.
        logger_factory=structlog.WriteLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )


def add_trace_ids(
    _logger: object, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """trace_id and span_id of the current span, as Jaeger shows them; nothing outside one.

    With tracing off there is never a current span: one context lookup per line.
    """
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = trace.format_trace_id(context.trace_id)
        event["span_id"] = trace.format_span_id(context.span_id)
    return event
