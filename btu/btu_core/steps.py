"""Named steps inside one run of a task (frappe-free): what the original BTU's TaskComponent was for.

A task function marks the parts of its work::

	from btu.api import step

	def nightly_sync(days: int = 1):
		with step("Fetch orders"):
			orders = fetch(days)
			print(f"{len(orders)} orders")
		with step("Post invoices"):
			post(orders)

	@step("Send summary")          # or as a decorator: every call is one step
	def send_summary(): ...

Each step records its name, status (Success, Failed when an exception leaves it, Timeout when
RQ's job timeout interrupts it), start time, duration and output (what it printed: the run's
own output keeps everything too). The task runner collects the steps of a run and writes them
into the run's BTU Task Log (child table *Steps*). An exception is never swallowed: it leaves the
step marked Failed and goes on to the caller, so a failing step fails the run unless the task
catches it. Outside a BTU run (a test, the console) ``step`` only times its block: nothing is kept.

Steps are kept in memory and written with the run's final log (writing them as they end would
commit the task's work half-way). A run keeps at most ``MAX_STEPS`` steps; the rest are counted
in one closing row. Steps may nest; a row's *Depth* says how deep.
"""

from __future__ import annotations

import functools
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, TypeVar

from btu.btu_core.output_capture import capture_output

SUCCESS = "Success"
FAILED = "Failed"
TIMEOUT = "Timeout"
RUNNING = "Running"  # while the block runs; never written (a run ends every step it opened)

MAX_STEPS = 500
MAX_NAME_CHARS = 140  # a Data field
MAX_STEP_OUTPUT = 20_000

F = TypeVar("F", bound=Callable[..., Any])
_local = threading.local()


class StepError(ValueError):
	"""A step was declared wrongly (its name)."""


@dataclass
class StepRecord:
	"""One step of a run, as the Task Log shows it."""

	name: str
	depth: int = 0
	status: str = RUNNING
	started_at: float = 0.0  # Unix time
	duration: float = 0.0  # seconds
	output: str = ""
	error: str = ""

	def as_row(self) -> dict[str, Any]:
		text, status = self.output, self.status
		if status == RUNNING:  # opened in a thread or generator that never closed it
			status, self.error = FAILED, self.error or "The step had not ended when the run did."
		if self.error:
			text = f"{text}{'' if not text or text.endswith(chr(10)) else chr(10)}{self.error}"
		return {
			"step_name": self.name,
			"status": status,
			"started_at": self.started_at,
			"duration": round(self.duration, 3),
			"depth": self.depth,
			"output": text,
		}


@dataclass
class StepRecorder:
	"""The steps of one run (the task runner makes one per run; see ``recording``)."""

	max_steps: int = MAX_STEPS
	steps: list[StepRecord] = field(default_factory=list)
	omitted: int = 0
	omitted_failed: int = 0
	omitted_duration: float = 0.0
	_open: list[StepRecord] = field(default_factory=list)

	def rows(self) -> list[dict[str, Any]]:
		"""The rows of the Task Log's Steps table, in the order the steps started."""
		rows = [record.as_row() for record in self.steps]
		if self.omitted:
			rows.append(
				{
					"step_name": f"({self.omitted} more steps not kept: a run keeps at most {self.max_steps})",
					"status": FAILED if self.omitted_failed else SUCCESS,
					"started_at": None,
					"duration": round(self.omitted_duration, 3),
					"depth": 0,
					"output": f"{self.omitted_failed} of them failed." if self.omitted_failed else "",
				}
			)
		return rows


def current_recorder() -> StepRecorder | None:
	"""The recorder of the run this thread is executing, or None outside a BTU run."""
	return getattr(_local, "recorder", None)


@contextmanager
def recording(max_steps: int = MAX_STEPS) -> Iterator[StepRecorder]:
	"""Collect the steps this thread records while the block runs (the task runner's side)."""
	previous = current_recorder()
	recorder = StepRecorder(max_steps=max_steps)
	_local.recorder = recorder
	try:
		yield recorder
	finally:
		_local.recorder = previous


def _clean_name(name: Any) -> str:
	if callable(name):
		raise StepError("@step needs a name: write @step('Send invoices') above the function, not @step.")
	if not isinstance(name, str):
		raise StepError(
			f"A step's name must be a string, e.g. step('Load orders'); got {type(name).__name__} {name!r}."
		)
	text = " ".join(name.split())
	if not text:
		raise StepError("A step's name must not be empty, e.g. step('Load orders').")
	if len(text) > MAX_NAME_CHARS:
		text = text[: MAX_NAME_CHARS - 1] + "…"
	return text


def _is_timeout(exc: BaseException) -> bool:
	"""RQ's job timeout, recognised by name so that this module needs no rq."""
	return any(cls.__name__ == "JobTimeoutException" for cls in type(exc).__mro__)


class step:  # noqa: N801 - used like a function: ``with step("name")`` / ``@step("name")``
	"""Record a named step of the current run: a context manager, or a decorator (one step per call)."""

	def __init__(self, name: str) -> None:
		self.name = _clean_name(name)
		self.record: StepRecord | None = None
		self._capture: Any = None
		self._output: Any = None
		self._kept = False
		self._started = 0.0

	def __call__(self, func: F) -> F:
		if not callable(func):
			raise StepError(f"@step({self.name!r}) decorates a function; got {type(func).__name__}.")

		@functools.wraps(func)
		def wrapper(*args: Any, **kwargs: Any) -> Any:
			with step(self.name):
				return func(*args, **kwargs)

		return wrapper  # type: ignore[return-value]

	def __enter__(self) -> StepRecord:
		if self.record is not None:
			raise StepError(f"step({self.name!r}) is already in use; write a new step(...) for each block.")
		recorder = current_recorder()
		depth = len(recorder._open) if recorder is not None else 0
		self.record = StepRecord(self.name, depth=depth, started_at=time.time())
		if recorder is not None:
			recorder._open.append(self.record)
			self._kept = len(recorder.steps) < recorder.max_steps
			if self._kept:
				recorder.steps.append(self.record)  # in the order the steps start
			self._capture = capture_output(echo=True, max_chars=MAX_STEP_OUTPUT)
			self._output = self._capture.__enter__()
		self._started = time.perf_counter()
		return self.record

	def __exit__(self, exc_type, exc, tb) -> bool:
		record = self.record
		assert record is not None
		record.duration = time.perf_counter() - self._started
		if exc is None:
			record.status = SUCCESS
		elif _is_timeout(exc):
			record.status = TIMEOUT
			record.error = f"{type(exc).__name__}: {exc}"
		else:
			record.status = FAILED
			record.error = f"{type(exc).__name__}: {exc}"
		recorder = current_recorder()
		if self._capture is not None:
			self._capture.__exit__(None, None, None)
			record.output = self._output.text
			self._capture = None
		if recorder is not None:
			if record in recorder._open:
				recorder._open.remove(record)
			if not self._kept:
				recorder.omitted += 1
				recorder.omitted_failed += record.status != SUCCESS
				recorder.omitted_duration += record.duration
		return False  # never swallow the exception
