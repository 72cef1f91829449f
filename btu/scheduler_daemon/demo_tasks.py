"""Small functions the demo schedules run (plain mode: a plain ``rq worker`` imports them)."""

from __future__ import annotations

import random
import time


def say_hello(name: str = "world") -> str:
	print(f"Hello, {name}!")
	return f"greeted {name}"


def add(a: float, b: float) -> float:
	print(f"{a} + {b} = {a + b}")
	return a + b


def flaky(failure_rate: float = 0.3) -> str:
	"""Fails now and then, to show failed runs in the live view."""
	time.sleep(0.1)
	if random.random() < failure_rate:
		raise RuntimeError("demo failure (this task fails on purpose now and then)")
	return "ok"


def record_run(path: str, label: str = "") -> str:
	"""Append one line per run to a file (used by the tests to count executions)."""
	with open(path, "a", encoding="utf-8") as handle:
		handle.write(f"{time.time():.3f} {label}\n")
	return label
