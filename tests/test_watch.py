"""`btu-scheduler watch`: one line per finished run, saying what the run's Task Log says."""

from __future__ import annotations

import subprocess
import sys

from .services import REPO, wait_for

TASKS = "tests.watch_tasks"


def test_watch_reports_the_task_logs_status_and_custom_queues(
	site_db, daemon_config, start_daemon, start_worker
):
	site_db.add_task(
		"BTU-F",
		f"{TASKS}.runner_outcome",
		{
			"status": "Failed",
			"log": "BTLOG-0000007",
			"message": "Traceback (most recent call last):\nValueError: boom",
		},
	)
	site_db.add_task(
		"BTU-T",
		f"{TASKS}.runner_outcome",
		{
			"status": "Timeout",
			"log": "BTLOG-0000008",
			"message": "The task ran longer than its maximum duration (1 s) and was stopped.",
		},
	)
	site_db.add_task("BTU-S", f"{TASKS}.runner_outcome", {"status": "Success", "log": "BTLOG-0000009"})
	site_db.add_task("BTU-P", f"{TASKS}.plain_result", queue="reports")
	for name, task in (("TS-F", "BTU-F"), ("TS-T", "BTU-T"), ("TS-S", "BTU-S")):
		site_db.add_schedule(name, task, "*/2 * * * * *")
	site_db.add_schedule("TS-P", "BTU-P", "*/2 * * * * *", queue="reports")
	daemon = start_daemon()
	start_worker(queues=("default", "reports"))
	wait_for(
		lambda: daemon.request("status").data["counters"]["runs_enqueued"] >= 8, 20, what="runs enqueued"
	)
	watch = subprocess.run(
		[
			sys.executable,
			"-m",
			"btu.scheduler_daemon",
			"watch",
			"--config",
			daemon_config.path,
			"--seconds",
			"3",
		],
		capture_output=True,
		text=True,
		cwd=str(REPO),
		timeout=60,
	)
	assert watch.returncode == 0, watch.stderr
	lines = watch.stdout.splitlines()

	def lines_of(schedule: str) -> list[str]:
		return [line for line in lines if f" {schedule} " in line]

	assert lines_of("TS-F") and all(
		"FAILED" in l and "log=BTLOG-0000007 ValueError: boom" in l for l in lines_of("TS-F")
	)
	assert lines_of("TS-T") and all("TIMEOUT" in l and "was stopped." in l for l in lines_of("TS-T"))
	assert lines_of("TS-S") and all(
		"OK" in l and "log=BTLOG-0000009" in l and "FAILED" not in l for l in lines_of("TS-S")
	)
	# A schedule on a custom queue is watched too (not only short/default/long).
	assert lines_of("TS-P") and all("OK" in l and "result=42" in l for l in lines_of("TS-P"))
