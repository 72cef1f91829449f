"""Task functions for tests/test_watch.py: they return what BTU's task runner returns to RQ in
``frappe`` job mode (``RunOutcome.summary()``: the job finishes, the Task Log says how the run went)."""

from __future__ import annotations


def runner_outcome(status: str, log: str, message: str = "") -> dict:
	return {"task": "BTU-00001", "status": status, "log": log, "result_message": message, "schedule": None}


def plain_result() -> int:
	return 42
