"""Logging for the ``ccm`` process (the standard ``logging`` module): level and format from config, on stderr.

``[logging] level`` (or CCM_LOG_LEVEL) applies to every command when set; when it is not,
commands log warnings only and the long-running processes (``ccm schedule run``, ``ccm serve``)
log INFO, so each scheduled job shows. ``-v`` gives INFO, ``--debug`` DEBUG. ``format = "json"``
writes one JSON object a line (time, level, logger, message, and the record's extra fields).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

ROOT = "ccm"
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonLines(logging.Formatter):
    """One JSON object a line; the ``extra`` fields of a record become keys of their own."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to the stream given, else to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def __init__(self, stream=None):
        self._given = stream
        super().__init__(stream)

    @property
    def stream(self):
        return self._given or sys.stderr

    @stream.setter
    def stream(self, value):
        self._given = value


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: str | None, fmt: str = "text", verbosity: int = 0, daemon: bool = False,
              stream=None) -> int:
    """Set up the ``ccm`` loggers (and the root's, for APScheduler and uvicorn); returns the level used.

    The command line wins (``--debug`` then ``-v``), then the configured level, then the
    default: INFO for a daemon, WARNING otherwise.
    """
    if verbosity >= 2:
        chosen = logging.DEBUG
    elif verbosity == 1:
        chosen = logging.INFO
    elif level:
        chosen = logging.getLevelName(level.upper())
    else:
        chosen = logging.INFO if daemon else logging.WARNING
    handler = _StderrHandler(stream)
    handler.setFormatter(JsonLines() if fmt == "json" else logging.Formatter(TEXT_FORMAT, "%Y-%m-%dT%H:%M:%S%z"))
    handler.set_name("ccm")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "ccm"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(chosen)
    return chosen


def get(name: str) -> logging.Logger:
    """The logger ``ccm.<name>``."""
    return logging.getLogger(f"{ROOT}.{name}")
