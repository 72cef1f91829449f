"""Capture what a task writes to ``sys.stdout`` and ``sys.stderr`` (frappe-free).

Capture is per thread. While a capture is active, ``sys.stdout`` and ``sys.stderr`` are
proxies that send each write to the innermost capture *of the writing thread*; writes
from other threads pass straight through to the real streams. So a synchronous run in a
multi-threaded web server records only its own output, and an RQ work horse (one job per
process) records everything its job prints.

Nesting is allowed: the innermost capture receives the text; with ``echo=True`` it also
passes the text on to the enclosing capture, or to the real stream at the outermost level
(this implements BTU Task's "Repeat Log In Stdout").

Not captured: writes to the underlying file descriptors (C extensions, subprocesses),
``sys.stdout.buffer`` writes, threads started by the task, and logging handlers that
were created with a direct reference to the original stream.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator, TextIO

DEFAULT_MAX_CHARS = 1_000_000
STREAMS = ("stdout", "stderr")

_local = threading.local()
_install_lock = threading.Lock()
_active_count = 0


class _BoundedText:
	"""Text accumulator keeping the first and last ``max_chars / 2`` characters."""

	def __init__(self, max_chars: int | None) -> None:
		if max_chars is not None and max_chars < 2:
			raise ValueError("max_chars must be at least 2 (or None for no limit)")
		self._max = max_chars
		self._head: list[str] = []
		self._head_len = 0
		self._tail: list[str] = []
		self._tail_len = 0
		self.total = 0

	def add(self, text: str) -> None:
		if not text:
			return
		self.total += len(text)
		if self._max is None:
			self._head.append(text)
			return
		head_room = self._max // 2 - self._head_len
		if head_room > 0:
			self._head.append(text[:head_room])
			self._head_len += min(head_room, len(text))
			text = text[head_room:]
			if not text:
				return
		self._tail.append(text)
		self._tail_len += len(text)
		tail_limit = self._max - self._max // 2
		if self._tail_len > 2 * tail_limit:  # amortised trimming
			joined = "".join(self._tail)[-tail_limit:]
			self._tail = [joined]
			self._tail_len = len(joined)

	def value(self) -> str:
		head = "".join(self._head)
		if self._max is None:
			return head
		tail = "".join(self._tail)[-(self._max - self._max // 2) :]
		dropped = self.total - len(head) - len(tail)
		if dropped > 0:
			return f"{head}\n[... {dropped} characters omitted ...]\n{tail}"
		return head + tail


class CapturedOutput:
	"""What was written while one capture was active."""

	def __init__(self, echo: bool = False, max_chars: int | None = DEFAULT_MAX_CHARS) -> None:
		self.echo = echo
		self._combined = _BoundedText(max_chars)
		self._per_stream = {name: _BoundedText(max_chars) for name in STREAMS}

	@property
	def text(self) -> str:
		"""stdout and stderr interleaved in the order they were written (like a terminal)."""
		return self._combined.value()

	@property
	def stdout(self) -> str:
		return self._per_stream["stdout"].value()

	@property
	def stderr(self) -> str:
		return self._per_stream["stderr"].value()

	@property
	def total_chars(self) -> int:
		"""Characters written, including any that were omitted to respect ``max_chars``."""
		return self._combined.total

	def _record(self, stream: str, text: str) -> None:
		self._combined.add(text)
		self._per_stream[stream].add(text)


class _StreamProxy:
	"""Stands in for sys.stdout / sys.stderr and routes writes to the thread's captures."""

	def __init__(self, stream: str, target: TextIO) -> None:
		self._btu_stream = stream
		self._btu_target = target

	def write(self, text: str) -> int:
		if not isinstance(text, str):
			raise TypeError(f"write() argument must be str, not {type(text).__name__}")
		stack: list[CapturedOutput] = getattr(_local, "stack", None) or []
		for capture in reversed(stack):
			capture._record(self._btu_stream, text)
			if not capture.echo:
				return len(text)
		self._btu_target.write(text)
		return len(text)

	def writelines(self, lines: Any) -> None:
		for line in lines:
			self.write(line)

	def flush(self) -> None:
		try:
			self._btu_target.flush()
		except (OSError, ValueError):  # closed or detached real stream: nothing to flush
			pass

	def __getattr__(self, name: str) -> Any:
		# encoding, errors, isatty, fileno, buffer, name, ... come from the real stream.
		return getattr(self._btu_target, name)


def _install() -> None:
	global _active_count
	with _install_lock:
		for name in STREAMS:
			current = getattr(sys, name)
			if not isinstance(current, _StreamProxy):
				setattr(sys, name, _StreamProxy(name, current))
		_active_count += 1


def _uninstall() -> None:
	global _active_count
	with _install_lock:
		_active_count -= 1
		if _active_count > 0:
			return
		_active_count = 0
		for name in STREAMS:
			current = getattr(sys, name)
			# Leave alone a stream somebody else replaced meanwhile.
			if isinstance(current, _StreamProxy):
				setattr(sys, name, current._btu_target)


@contextmanager
def capture_output(echo: bool = False, max_chars: int | None = DEFAULT_MAX_CHARS) -> Iterator[CapturedOutput]:
	"""Capture this thread's writes to sys.stdout and sys.stderr.

	The yielded object stays readable after the block, also when the block raised
	(the exception propagates unchanged). ``max_chars`` bounds memory: beyond it the
	middle of the output is replaced by a note saying how much was omitted.
	"""
	capture = CapturedOutput(echo=echo, max_chars=max_chars)
	stack: list[CapturedOutput] | None = getattr(_local, "stack", None)
	if stack is None:
		stack = _local.stack = []
	_install()
	stack.append(capture)
	try:
		yield capture
	finally:
		# Remove exactly this capture, even if an inner one was left behind by mistake.
		for index in range(len(stack) - 1, -1, -1):
			if stack[index] is capture:
				del stack[index]
				break
		_uninstall()


def active_captures() -> int:
	"""How many captures are active in the calling thread (0 outside any capture)."""
	return len(getattr(_local, "stack", None) or [])
