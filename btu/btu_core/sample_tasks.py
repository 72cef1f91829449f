"""Small task functions to try BTU with (and that BTU's own real-bench tests schedule).

Point a BTU Task's Function at one of them, e.g. ``btu.btu_core.sample_tasks.hello`` with the
arguments ``{"name": "Desk"}``. Frappe-free on purpose: they run anywhere. Each is declared runnable with ``@runnable``, as
an app declares the functions its tasks may run (docs/security.md).
"""

from __future__ import annotations

import sys
import time

from btu import runnable
from btu.btu_core.callables import BTUAwareFunction  # the original BTU's BTU_AWARE_FUNCTION


@runnable
def hello(name: str = "world") -> dict:
	"""Prints a greeting (stdout and stderr) and returns a small result."""
	print(f"Hello, {name}!")
	print("(a line on stderr)", file=sys.stderr)
	return {"greeted": name}


@runnable
def fail(message: str = "this task fails on purpose") -> None:
	"""Prints a line, then raises: a Failed Task Log with the traceback."""
	print("about to fail")
	raise RuntimeError(message)


@runnable
def sleep(seconds: float = 5.0) -> str:
	"""Sleeps: with a Max Task Duration below ``seconds`` the run ends as Timeout."""
	print(f"sleeping {seconds} s")
	time.sleep(float(seconds))
	return f"slept {seconds} s"


@runnable
def crash_work_horse(marker: str = "") -> str:
	"""Ends the RQ work horse running it at once (``os._exit``), as the out-of-memory killer would:
	the run leaves a failed RQ job (the BTU Failed Jobs page) and no finished Task Log. With
	``marker`` (a file path) only the first run crashes: it leaves the file, later runs find it and
	succeed. Refuses to run anywhere but in an RQ work horse (it would end a web server's process)."""
	import os

	from rq import get_current_job

	if get_current_job() is None:
		raise RuntimeError(
			"crash_work_horse runs only in an RQ worker: use Run now in a worker or a schedule."
		)
	if marker and os.path.exists(marker):
		print(f"{marker} exists: not crashing this time")
		return "survived"
	if marker:
		with open(marker, "w") as handle:
			handle.write("crashed once\n")
	print("ending the work horse now", flush=True)
	os._exit(1)


@runnable
def with_steps(orders: int = 3) -> str:
	"""Records three named steps (one inside another); its Task Log shows them under Steps."""
	from btu.btu_core.steps import step

	with step("Fetch orders"):
		print(f"fetched {orders} orders")
		with step("Check stock"):
			print("stock is fine")
	with step("Send summary"):
		print("summary sent")
	return f"{orders} orders done"


@runnable
class GreetingReport(BTUAwareFunction):
	"""A BTU-aware class (as the original BTU's): Function names the class, BTU calls its run()."""

	def run(self, name: str = "world") -> dict:
		print(f"task {self.btu_task_id} (schedule {self.btu_task_schedule_id}) greets {name}")
		return {"greeted": name, "task": self.btu_task_id}
