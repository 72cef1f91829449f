"""Small task functions to try BTU with (and that BTU's own real-bench tests schedule).

Point a BTU Task's Function at one of them, e.g. ``btu.btu_core.sample_tasks.hello`` with the
arguments ``{"name": "Desk"}``. Frappe-free on purpose: they run anywhere.
"""

from __future__ import annotations

import sys
import time


def hello(name: str = "world") -> dict:
	"""Prints a greeting (stdout and stderr) and returns a small result."""
	print(f"Hello, {name}!")
	print("(a line on stderr)", file=sys.stderr)
	return {"greeted": name}


def fail(message: str = "this task fails on purpose") -> None:
	"""Prints a line, then raises: a Failed Task Log with the traceback."""
	print("about to fail")
	raise RuntimeError(message)


def sleep(seconds: float = 5.0) -> str:
	"""Sleeps: with a Max Task Duration below ``seconds`` the run ends as Timeout."""
	print(f"sleeping {seconds} s")
	time.sleep(float(seconds))
	return f"slept {seconds} s"
