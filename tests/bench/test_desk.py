"""BTU through Desk in headless Chromium, as a Frappe administrator uses it, on the real bench with
its own worker and the BTU daemon. The tests run in order and share what they made (``STORY``);
every record is deleted at the end of the session (``site_left_as_found``)."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest

from .harness import wait_for

SAMPLES = "btu.btu_core.sample_tasks"
TOKEN = uuid.uuid4().hex[:6]
STORY: dict[str, str] = {}
VALIDATION_ERRORS = (r"417", r"EXPECTATION FAILED", r"ValidationError", r"Traceback")

pytestmark = pytest.mark.usefixtures("no_console_errors")


def make_task(desk, description: str, function: str, arguments: str = "", duration: int | None = None) -> str:
	desk.new_form("btu-task")
	desk.type_into("desc_short", description)
	desk.type_into("function_string", function)
	if arguments:
		desk.type_into("arguments", arguments)
	if duration is not None:
		desk.type_into("max_task_duration", str(duration))
	desk.save()
	desk.submit()
	return desk.doc()["name"]


def new_schedule_for(desk, task: str) -> None:
	"""From the task's form: Create > Task Schedule (the form opens with the task filled in)."""
	desk.goto(f"/app/btu-task/{task}")
	desk.click_button("Task Schedule", group="Create")
	desk.page.wait_for_function(
		"() => cur_frm && cur_frm.doctype === 'BTU Task Schedule' && cur_frm.doc.task"
	)


def headline_texts(desk) -> list[str]:
	"""The lines of the form's headline (Desk's .form-message: one child per set_headline)."""
	return [
		t.strip()
		for t in desk.page.locator(".form-message:visible > div:not(.close-message)").all_inner_texts()
		if t.strip()
	]


def task_logs(api, **filters) -> list[dict]:
	return api.get_list(
		"BTU Task Log",
		filters=[[k, "=", v] for k, v in filters.items()],
		fields=["name", "success_fail", "schedule", "task", "stdout", "result_message", "execution_time"],
	)


def test_01_create_and_submit_a_task(desk, api):
	STORY["task"] = make_task(desk, f"BTU e2e hello {TOKEN}", f"{SAMPLES}.hello", '{"name": "Desk"}')
	doc = api.get_doc("BTU Task", STORY["task"])
	assert doc["docstatus"] == 1 and doc["function_string"] == f"{SAMPLES}.hello"
	desk.shot("task-submitted")


def test_02_schedule_from_the_frequency_fields(desk, api):
	new_schedule_for(desk, STORY["task"])
	minute = (dt.datetime.now(dt.timezone.utc).minute + 3) % 60
	desk.type_into("run_frequency", "Hourly")
	desk.type_into("minute", str(minute))
	desk.save()
	doc = desk.doc()
	STORY["hourly"] = doc["name"]
	assert doc["cron_string"] == f"{minute} * * * *"
	assert doc["schedule_description"]
	wait_for(
		lambda: any("Next run" in t for t in headline_texts(desk)), 30, what="the next run in the headline"
	)
	time.sleep(1.5)  # every refresh of the form after the save has answered
	assert len(headline_texts(desk)) == 1, headline_texts(desk)  # once, not once per refresh
	desk.shot("schedule-hourly-saved")


def test_03_cron_style_schedule_with_its_own_zone_and_next_runs(desk, api):
	new_schedule_for(desk, STORY["task"])
	desk.type_into("run_frequency", "Cron Style")
	desk.type_into("cron_string", "* * * * *")
	desk.type_into("cron_timezone", "Asia/Kolkata")
	desk.save()
	STORY["cron"] = desk.doc()["name"]
	assert desk.doc()["cron_timezone"] == "Asia/Kolkata"
	desk.page.reload()
	desk.wait_idle()
	headlines = headline_texts(desk)
	assert len([t for t in headlines if "Next run" in t]) <= 1, headlines  # never twice
	desk.click_button("Show next runs")
	dialog = desk.dialog()
	dialog.locator("table").wait_for()
	rows = dialog.locator("tbody tr")
	assert rows.count() == 10
	assert "Asia/Kolkata" in dialog.inner_text()
	desk.shot("show-next-runs")
	desk.close_dialogs()


def test_04_rules_that_cannot_fire_are_refused_with_the_reason(desk):
	new_schedule_for(desk, STORY["task"])
	desk.type_into("run_frequency", "Cron Style")
	desk.type_into("cron_string", "61 * * * *")
	with desk.expecting_errors(*VALIDATION_ERRORS):
		desk.click_button("Show next runs")
		text = desk.dialog().inner_text()
		assert "61" in text and "minute" in text.lower(), text
		desk.shot("next-runs-invalid-rule")
		desk.close_dialogs()
	desk.type_into("cron_string", "0 0 30 2 *")
	with desk.expecting_errors(*VALIDATION_ERRORS):
		desk.page.keyboard.press("Control+S")
		text = desk.dialog().inner_text()
		assert "never" in text.lower(), text
		desk.shot("never-firing-rule-refused")
		desk.close_dialogs()
	assert desk.page.evaluate("() => cur_frm.is_new()")


def test_05_a_run_executed_by_the_benchs_worker_and_its_log(desk, api):
	logs = wait_for(
		lambda: task_logs(api, schedule=STORY["cron"]), 150, 2.0, what="a run of the every-minute schedule"
	)
	log = logs[0]
	STORY["run_log"] = log["name"]
	desk.goto(f"/app/btu-task-log/{log['name']}")
	form = desk.page.locator(".form-layout")
	text = form.inner_text()
	assert "Hello, Desk!" in text
	doc = desk.doc()
	assert doc["success_fail"] == "Success"
	assert '"greeted": "Desk"' in doc["result_message"]
	assert doc["execution_time"] >= 0 and doc["task_component"] == "Scheduler" and doc["job_id"]
	desk.shot("task-log-success")


def test_06_run_now_on_this_server_and_in_a_worker(desk, api):
	desk.goto(f"/app/btu-task/{STORY['task']}")
	desk.click_button("Run now on this server", group="Run")
	dialog = desk.dialog()
	text = dialog.inner_text()
	assert "Success" in text and "Hello, Desk!" in text, text
	desk.shot("run-now-on-server")
	desk.close_dialogs()
	before = {row["name"] for row in task_logs(api, task=STORY["task"])}
	desk.click_button("Run now in a worker", group="Run")
	desk.page.locator(".alert-message, .desk-alert").filter(has_text="queued").first.wait_for()
	desk.shot("run-now-in-worker-queued")
	new = wait_for(
		lambda: [r for r in task_logs(api, task=STORY["task"]) if r["name"] not in before and r["schedule"] is None
				 and r["success_fail"] == "Success"], 90, 1.0, what="the worker's run")  # fmt: skip
	assert "Hello, Desk!" in new[0]["stdout"]


def test_07_failed_log_with_traceback_and_timeout_log(desk, api):
	failing = make_task(desk, f"BTU e2e fail {TOKEN}", f"{SAMPLES}.fail", '{"message": "boom from Desk"}')
	desk.click_button("Run now on this server", group="Run")
	text = desk.dialog().inner_text()
	assert "Failed" in text and "RuntimeError: boom from Desk" in text and "Traceback" in text, text
	desk.shot("run-now-failed")
	desk.close_dialogs()
	failed = wait_for(lambda: task_logs(api, task=failing), 30, what="the Failed log")[0]
	desk.goto(f"/app/btu-task-log/{failed['name']}")
	assert desk.doc()["success_fail"] == "Failed"
	assert "RuntimeError: boom from Desk" in desk.page.locator(".form-layout").inner_text()
	desk.shot("task-log-failed")

	slow = make_task(desk, f"BTU e2e timeout {TOKEN}", f"{SAMPLES}.sleep", '{"seconds": 30}', duration=3)
	desk.click_button("Run now in a worker", group="Run")
	timeout = wait_for(
		lambda: [r for r in task_logs(api, task=slow) if r["success_fail"] == "Timeout"],
		120,
		1.0,
		what="the Timeout log",
	)[0]
	desk.goto(f"/app/btu-task-log/{timeout['name']}")
	assert desk.doc()["success_fail"] == "Timeout"
	assert "maximum duration (3 s)" in desk.doc()["result_message"]
	desk.shot("task-log-timeout")


def test_08_disable_a_schedule_and_delete_one_that_has_run(desk, api, bench_processes):
	desk.open_form("btu-task-schedule", STORY["hourly"])
	desk.type_into("enabled", "")
	desk.save()
	state = lambda: api.call("btu.btu_api.endpoints.schedule_daemon_state", schedule=STORY["hourly"])  # noqa: E731
	wait_for(lambda: state()["next_run"] is None, 20, what="the disabled schedule to leave the daemon")
	desk.shot("schedule-disabled")
	desk.open_form("btu-task-schedule", STORY["cron"])
	assert task_logs(api, schedule=STORY["cron"]), "the schedule to delete has run"
	desk.menu("Delete")
	desk.dialog().locator(".btn-primary:has-text('Yes')").click()
	# Desk goes back to the previous page once the document is deleted (no error dialog).
	wait_for(lambda: STORY["cron"] not in api.names("BTU Task Schedule"), 30, what="the schedule deleted")
	desk.wait_idle()
	assert not desk.page.locator(".modal.show:has-text('Cannot delete')").count()
	assert task_logs(api, name=STORY["run_log"])[0]["schedule"] == STORY["cron"]  # the log keeps its name
	desk.shot("schedule-deleted")


def test_09_status_page_reports_ping_and_resync(desk, bench_config):
	desk.goto("/app/btu-scheduler-status")
	desk.page.locator(
		".indicator-pill:has-text('Daemon running'), .indicator:has-text('Daemon running')"
	).first.wait_for()
	page_text = desk.page.locator(".layout-main").inner_text()
	assert "served" in page_text and "not served" not in page_text, page_text
	desk.shot("scheduler-status")
	for report in ("Task Log Summary", "Scheduled Task Summary"):
		desk.goto(f"/app/query-report/{report}")
		desk.page.get_by_text("Execution Time").first.wait_for()  # the report has run
		desk.shot("report-" + report.lower().replace(" ", "-"))
	desk.goto("/app/btu-configuration")
	desk.click_button("Ping daemon")
	assert "The daemon answered." in desk.dialog().inner_text()
	desk.shot("ping-daemon")
	desk.close_dialogs()
	desk.click_button("Resync all schedules")
	assert "refresh" in desk.dialog().inner_text().lower()
	desk.shot("resync-all")
	desk.close_dialogs()


def test_10_a_save_while_the_daemon_is_stopped_shows_why_and_is_picked_up_later(desk, api, bench_processes):
	daemon = bench_processes.daemon
	if not daemon.restartable:
		pytest.skip("the daemon runs under `bench start` (honcho): stopping it would stop the whole bench")
	daemon.stop()
	try:
		desk.open_form("btu-task-schedule", STORY["hourly"])
		desk.type_into("enabled", "1")
		desk.save()
		dialog = desk.dialog()
		title, text = dialog.locator(".modal-title").inner_text(), dialog.locator(".modal-body").inner_text()
		assert "BTU Scheduler Daemon Unreachable" in title
		assert "did not hear of it" in text and "btu_scheduler.sock" in text and "when it is back" in text, (
			text
		)
		assert ".)." not in text
		desk.shot("save-while-daemon-stopped")
		desk.close_dialogs()
	finally:
		daemon.start()
	state = lambda: api.call("btu.btu_api.endpoints.schedule_daemon_state", schedule=STORY["hourly"])  # noqa: E731
	wait_for(
		lambda: state()["next_run"] is not None, 60, 1.0, what="the change picked up by the restarted daemon"
	)
	desk.goto(f"/app/btu-task-schedule/{STORY['hourly']}")
	wait_for(lambda: any("Next run" in t for t in headline_texts(desk)), 20, what="the headline")
	desk.shot("picked-up-after-restart")


def test_11_a_rule_changed_while_the_daemon_is_stopped_is_shown_as_not_confirmed(desk, api, bench_processes):
	"""Issue 21 item 9: the form and the status page pair a time with the rule that produced it."""
	daemon = bench_processes.daemon
	if not daemon.restartable:
		pytest.skip("the daemon runs under `bench start` (honcho): stopping it would stop the whole bench")
	doc = api.get_doc("BTU Task Schedule", STORY["hourly"])
	old_rule, minute = doc["cron_string"], (int(doc["minute"]) + 7) % 60
	daemon.stop()
	try:
		desk.open_form("btu-task-schedule", STORY["hourly"])
		desk.type_into("minute", str(minute))
		desk.save()
		desk.close_dialogs()  # "daemon unreachable" (test_10)
		desk.goto(f"/app/btu-task-schedule/{STORY['hourly']}")
		line = wait_for(
			lambda: [t for t in headline_texts(desk) if "Not confirmed by the scheduler" in t],
			20,
			what="the unconfirmed next run",
		)[0]
		assert old_rule in line and f"{minute} * * * *" not in line, line
		desk.shot("next-run-not-confirmed")
		desk.goto("/app/btu-scheduler-status")
		row = desk.page.locator(f"tr:has(a:text-is('{STORY['hourly']}'))").first
		row.wait_for()
		assert "Not confirmed" in row.inner_text() and old_rule in row.inner_text(), row.inner_text()
		desk.shot("status-upcoming-not-confirmed")
	finally:
		daemon.start()
	desk.goto(f"/app/btu-task-schedule/{STORY['hourly']}")
	wait_for(
		lambda: any(t.startswith("Next run:") for t in headline_texts(desk)), 60, 2.0, what="confirmed again"
	)


def test_12_a_queue_no_worker_listens_on_is_warned_about_on_save(desk, api):
	"""Issue 21 item 2: runs would pile up in it; the save says so and how to start a worker."""
	queue = f"btu-noworker-{TOKEN}"
	api.insert({"doctype": "BTU Queue", "name": queue, "__newname": queue})
	try:
		desk.open_form("btu-task-schedule", STORY["hourly"])
		desk.type_into("queue_name", queue)
		desk.save()
		dialog = desk.dialog()
		assert "No Worker for This Queue" in dialog.locator(".modal-title").inner_text()
		text = dialog.locator(".modal-body").inner_text()
		assert f"bench worker --queue {queue}" in text and "start deadline" in text, text
		desk.shot("no-worker-warning")
		desk.close_dialogs()
		desk.type_into("queue_name", "default")
		desk.save()
		assert not desk.page.locator(".modal.show:has-text('No Worker for This Queue')").count()
	finally:
		api.delete("BTU Queue", queue)
