"""Structured logs: one JSON object a line, each carrying the request's correlation id.

The gateway gives every HTTP request a correlation id (the client's X-Request-Id, or a
new one) and returns it in the response. nameko carries it through RPC (context data),
the outbox carries it in every event it causes (the CloudEvents extension
`correlationid`), and consumers put it back into their context: so one id follows a
report from the phone through every service's log lines. `grep` for it, or filter on
`correlation_id` in whatever collects the logs.
"""
from __future__ import annotations

import contextvars
import json
import logging
import traceback
from datetime import UTC, datetime

from nameko.extensions import DependencyProvider

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None)


class CorrelationFilter(logging.Filter):
    """Stamps each record with the current worker's correlation id, unless the call
    passed one explicitly (extra={"correlation_id": ...}), as a batch handler does."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "correlation_id", None):
            record.correlation_id = correlation_id.get()
        return True


_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "correlation_id"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str = "minqing", **kwargs):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if getattr(record, "correlation_id", None):
            entry["correlation_id"] = record.correlation_id
        # Anything passed as extra={...} is a field of its own, for machines to filter on.
        entry.update({k: v for k, v in vars(record).items()
                      if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["exc"] = "".join(traceback.format_exception(*record.exc_info))[-4000:]
        # One record, one line: U+2028/2029 are line breaks to some readers, so escape them.
        return (json.dumps(entry, ensure_ascii=False, default=str)
                .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


class CorrelationContext(DependencyProvider):
    """Sets the correlation id of each worker from its context data, for the logs."""

    def worker_setup(self, worker_ctx) -> None:
        correlation_id.set(worker_ctx.context_data.get("correlation_id"))
