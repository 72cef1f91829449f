"""Structured logging: one line per event, ``key=value`` pairs (logfmt), levelled."""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any


def utc_iso(ts: float) -> str:
	"""A Unix time as the daemon's log lines and replies write it: ``2026-11-23T05:40:00Z``."""
	return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class LogfmtFormatter(logging.Formatter):
	"""``2026-11-23T05:40:00.123Z INFO btu.scheduler event=run_enqueued site=a schedule=TS-1``."""

	def format(self, record: logging.LogRecord) -> str:
		stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
		if getattr(record, "btu_lines", False):  # a batch of events (log_event each=...): one line each
			prefix = f"{stamp} {record.levelname} {record.name} "
			return "\n".join(prefix + body for body in record.getMessage().split("\n"))
		line = f"{stamp} {record.levelname} {record.name} {record.getMessage()}"
		if record.exc_info:
			# Keep one line per event: the traceback is folded into a quoted field.
			line += " traceback=" + _quote(self.formatException(record.exc_info))
		return line


_NEEDS_QUOTES = re.compile(r'[ "=\n\t\\]')


def _quote(value: Any) -> str:
	text = str(value)
	if text and not _NEEDS_QUOTES.search(text):
		return text
	escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
	return f'"{escaped}"'


def _pairs(values: dict[str, Any]) -> str:
	return " ".join(f"{key}={_quote(value)}" for key, value in values.items() if value is not None)


def fields(event: str, **values: Any) -> str:
	"""Render one event line body: ``event=name k=v ...`` (None values are left out)."""
	pairs = _pairs(values)
	return f"event={event} {pairs}" if pairs else f"event={event}"


def log_event(
	logger: logging.Logger,
	level: int,
	event: str,
	exc_info: bool = False,
	each: list[dict[str, Any]] | None = None,
	**values: Any,
) -> None:
	"""Log one event; with ``each``, one line per dict of further fields, written as one record
	(a batch of 1000 runs costs one record and one write instead of 1000)."""
	if not logger.isEnabledFor(level):
		return
	if each is None:
		logger.log(level, fields(event, **values), exc_info=exc_info)
	elif each:
		head = fields(event, **values)
		lines = (f"{head} {pairs}" if pairs else head for pairs in map(_pairs, each))
		logger.log(level, "\n".join(lines), extra={"btu_lines": True})


def setup_logging(level: str = "INFO", stream: Any = None) -> None:
	handler = logging.StreamHandler(stream or sys.stderr)
	handler.setFormatter(LogfmtFormatter())
	root = logging.getLogger("btu")
	root.handlers[:] = [handler]
	root.setLevel(getattr(logging, level.upper(), logging.INFO))
	root.propagate = False
