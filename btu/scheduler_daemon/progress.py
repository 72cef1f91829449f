"""Progress of long CLI work: a click progress bar on a terminal, one plain line a second elsewhere."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import click


class Progress:
	"""``with Progress("refresh", total) as p: p.update(done, total)``.

	On a terminal: ``click.progressbar`` (position, percentage, ETA). Otherwise (a log
	file, a pipe, CI): one line per ``interval`` seconds, ``<label>: <done>/<total> (<pct>%)``,
	and a last line when the work ends, so logs show progress without flooding.
	"""

	def __init__(
		self,
		label: str,
		total: int,
		stream: TextIO | None = None,
		tty: bool | None = None,
		interval: float = 1.0,
	) -> None:
		self.label = label
		self.total = max(0, int(total))
		self.done = 0
		self.stream = stream or sys.stderr
		self.tty = self.stream.isatty() if tty is None else tty
		self.interval = interval
		self.started = time.monotonic()
		self.last_line = self.started
		self.bar: Any = None

	def __enter__(self) -> "Progress":
		if self.tty:
			self.bar = click.progressbar(
				length=self.total,
				label=self.label,
				file=self.stream,
				show_pos=True,
				show_percent=True,
				show_eta=True,
			)
			self.bar.__enter__()
		return self

	def update(self, done: int, total: int | None = None) -> None:
		if total is not None and total != self.total:
			self.total = max(0, int(total))
			if self.bar is not None:
				self.bar.length = self.total
		done = max(0, int(done))
		if self.bar is not None:
			step = done - self.bar.pos
			if step > 0:
				self.bar.update(step)
			elif total is not None:
				self.bar.render_progress()
		self.done = done
		now = time.monotonic()
		if self.bar is None and now - self.last_line >= self.interval:
			self.last_line = now
			self._line()

	def _line(self, final: bool = False) -> None:
		percent = f" ({100.0 * self.done / self.total:.0f}%)" if self.total else ""
		tail = f" in {time.monotonic() - self.started:.1f} s" if final else ""
		click.echo(f"{self.label}: {self.done}/{self.total}{percent}{tail}", file=self.stream)

	def __exit__(self, *exc: Any) -> None:
		if self.bar is not None:
			self.bar.__exit__(*exc)
		elif exc[0] is None:
			self._line(final=True)
