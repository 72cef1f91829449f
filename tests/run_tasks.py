"""Task functions for the one-shot, overlap and pause tests (a plain ``rq worker`` imports them)."""

from __future__ import annotations

import os
import time


def record(path: str, label: str = "") -> str:
	"""One line per run: ``<pid> <label>``."""
	with open(path, "a", encoding="utf-8") as handle:
		handle.write(f"{os.getpid()} {label}\n")
	return label


def slow_record(path: str, seconds: float = 2.0, label: str = "") -> str:
	"""A run that lasts ``seconds``: writes ``start <n>`` when it begins and ``end <n>`` when it ends,
	<n> counting the runs (so that two runs that overlap show as start, start, end, end)."""
	with open(path, "a", encoding="utf-8") as handle:
		handle.write(f"start {label}\n")
	time.sleep(float(seconds))
	with open(path, "a", encoding="utf-8") as handle:
		handle.write(f"end {label}\n")
	return label
