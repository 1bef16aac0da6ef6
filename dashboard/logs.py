"""Log lines as plain text or as one JSON object per line, with the request's context.

`configure(fmt)` installs one handler on the root logger. Every record it writes gets
the Flask request's id, user, area and route when one is being served; a log call adds
others (`status`, `duration_ms`, `event_id`, `dead_reason`) with `extra={...}`.
Only these named fields are written: never headers, cookies or query strings.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import flask
import orjson

CONTEXT_FIELDS: tuple[str, ...] = ("request_id", "user", "area", "route", "status",
                                   "duration_ms", "event_id", "dead_reason")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class RequestContext(logging.Filter):
    """Adds the request id, user, area and route of the Flask request being served."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Fill the request fields a log call did not give; never drops a record."""
        if not flask.has_request_context():
            return True
        request = flask.request
        user = flask.g.get("user")
        found = {
            "request_id": flask.g.get("request_id"),
            "user": getattr(user, "name", None),
            "area": request.args.get("area_id") or request.args.get("area"),
            "route": request.url_rule.rule if request.url_rule else None,
        }
        for name, value in found.items():
            if value is not None and getattr(record, name, None) is None:
                setattr(record, name, str(value)[:64])
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, process, logger, message, context fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "process": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to `sys.stderr` as it is when a record comes, not as it was at start.

    A server thread started under a test's captured output would otherwise keep
    writing to that capture after it closed ("I/O operation on closed file").
    """

    def __init__(self) -> None:
        logging.Handler.__init__(self)
        self._fixed: Any = None  # a stream set with `setStream` instead

    @property  # type: ignore[override]
    def stream(self) -> Any:
        """The stream set with `setStream`, else the standard error of the moment."""
        return sys.stderr if self._fixed is None else self._fixed

    @stream.setter
    def stream(self, value: Any) -> None:
        self._fixed = value


def handler(fmt: str) -> logging.Handler:
    """A stderr handler writing `fmt` (`text` or `json`) with the request context."""
    out = Stderr()
    out.addFilter(RequestContext())
    out.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    return out


def configure(fmt: str, level: int = logging.INFO,
              also: tuple[str, ...] = ("gunicorn.error",)) -> None:
    """Send the root logger (and `also`, loggers that keep their own handlers) to one handler."""
    shared = handler(fmt)
    root = logging.getLogger()
    root.handlers[:] = [shared]
    root.setLevel(level)
    for name in also:
        logging.getLogger(name).handlers[:] = [shared]


def gunicorn_config(fmt: str) -> dict[str, Any]:
    """The `logconfig_dict` for gunicorn: its own lines (from the first one) in the same format."""
    formatter: dict[str, Any] = ({"()": "dashboard.logs.JsonFormatter"} if fmt == "json"
                                 else {"format": TEXT_FORMAT})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"citybrain": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "citybrain",
                                "stream": "ext://sys.stderr"}},
        "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["stderr"],
                                       "propagate": False},
                    "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False}},
        "root": {"level": "INFO", "handlers": ["stderr"]},
    }
