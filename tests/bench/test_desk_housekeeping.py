"""Issue 9 items 3, 4, 7, 8 and 9 through Desk in headless Chromium on the real bench, its worker and
the BTU daemon: steps in a Task Log, a BTU-aware class, automatic retries, Retry, the BTU Failed
Jobs page (a work horse that really died: open, requeue, delete; only this site's), Delete by date
range, log retention through Log Settings, Send test email over a real SMTP conversation, and the
workspace's chart and number cards. Each test makes the tasks it needs; BTU records are deleted at
the end of the session (``site_left_as_found``), the rest (Email Account, Email Queue, failed RQ jobs,
marker files, settings) by the test that made or changed it."""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest

from btu.btu_core.testing_smtp import SMTPSink

from .harness import Api, wait_for

SAMPLES = "btu.btu_core.sample_tasks"
TOKEN = uuid.uuid4().hex[:6]
VALIDATION_ERRORS = (r"417", r"EXPECTATION FAILED", r"ValidationError", r"Traceback")

pytestmark = pytest.mark.usefixtures("no_console_errors")


# --- helpers ----------------------------------------------------------------------------------------


def new_task(desk, description: str, function: str, arguments: str = "", retries: dict | None = None) -> str:
	"""A task made and submitted in Desk, as an administrator does (retries in its Retries section)."""
	desk.new_form("btu-task")
	desk.type_into("desc_short", f"{description} {TOKEN}")
	desk.type_into("function_string", function)
	if arguments:
		desk.type_into("arguments", arguments)
	if retries:
		desk.page.locator(".section-head:has-text('Retries')").first.click()
		for fieldname, value in retries.items():
			desk.type_into(fieldname, str(value))
	desk.save()
	desk.submit()
	return desk.doc()["name"]


def logs(api: Api, **filters) -> list[dict]:
	return api.get_list(
		"BTU Task Log",
		filters=[[k, "=", v] for k, v in filters.items()],
		fields=["name", "success_fail", "attempt", "retry_of", "schedule", "stdout", "job_id"],
	)


def run_in_worker(desk) -> None:
	desk.click_button("Run now in a worker", group="Run")
	desk.page.locator(".alert-message, .desk-alert").filter(has_text="queued").first.wait_for()


def failed_jobs(api: Api) -> list[dict]:
	return api.call("btu.btu_api.failed_jobs.list_failed_jobs")["jobs"]


def confirm(desk) -> None:
	desk.dialog().locator(".btn-primary:has-text('Yes')").click()


# --- 7. steps, 8. BTU-aware classes --------------------------------------------------------------------


def test_01_a_task_log_shows_the_steps_of_its_run(desk, api):
	task = new_task(desk, "BTU e2e steps", f"{SAMPLES}.with_steps", '{"orders": 7}')
	run_in_worker(desk)
	log = wait_for(lambda: logs(api, task=task), 90, 1.0, what="the worker's run")[0]
	doc = api.get_doc("BTU Task Log", log["name"])
	assert [(s["step_name"], s["status"], s["depth"]) for s in doc["steps"]] == [
		("Fetch orders", "Success", 0),
		("Check stock", "Success", 1),
		("Send summary", "Success", 0),
	]
	assert doc["steps"][0]["output"] == "fetched 7 orders\nstock is fine\n"
	desk.goto(f"/app/btu-task-log/{log['name']}")
	grid = desk.page.locator('.frappe-control[data-fieldname="steps"]')
	grid.scroll_into_view_if_needed()
	for name in ("Fetch orders", "Check stock", "Send summary"):
		grid.get_by_text(name).first.wait_for()
	assert json.loads(desk.doc()["arguments"]) == {"orders": 7}
	desk.shot("task-log-steps")


def test_02_a_btu_aware_class_runs_and_a_class_without_run_is_refused(desk, api):
	task = new_task(desk, "BTU e2e class", f"{SAMPLES}.GreetingReport", '{"name": "class"}')
	desk.click_button("Run now on this server", group="Run")
	text = desk.dialog().inner_text()
	assert "Success" in text and f"task {task} (schedule None) greets class" in text, text
	desk.shot("btu-aware-class-run")
	desk.close_dialogs()

	desk.new_form("btu-task")
	desk.type_into("desc_short", f"BTU e2e not a task {TOKEN}")
	desk.type_into(
		"function_string", "btu.btu_core.doctype.btu_task.test_btu_task.SampleClassWithoutRun"
	)  # declared, no run()
	with desk.expecting_errors(*VALIDATION_ERRORS):
		desk.page.keyboard.press("Control+S")
		text = desk.dialog().inner_text()
		assert "is a class without a run() method" in text and "def run(self, **kwargs)" in text, text
		desk.shot("class-without-run-refused")
		desk.close_dialogs()
	assert desk.page.evaluate("() => cur_frm.is_new()")


# --- 4. automatic retries, 3. Retry -------------------------------------------------------------------


def test_03_a_failing_run_is_retried_automatically_and_each_attempt_logged(desk, api):
	task = new_task(
		desk,
		"BTU e2e retries",
		f"{SAMPLES}.fail",
		'{"message": "fails every time"}',
		retries={"max_retries": 2, "retry_delay_seconds": 1, "retry_delay_cap_seconds": 2},
	)
	assert api.get_doc("BTU Task", task)["max_retries"] == 2
	run_in_worker(desk)
	chain = wait_for(
		lambda: (found := logs(api, task=task)) and len(found) == 3 and found,
		150,
		1.0,
		what="three attempts (the first and two retries: 1 s, then 2 s later)",
	)
	by_attempt = {row["attempt"]: row for row in chain}
	assert sorted(by_attempt) == [1, 2, 3]
	assert by_attempt[1]["retry_of"] is None and by_attempt[1]["schedule"] is None  # Run now in a worker
	assert (
		by_attempt[2]["retry_of"] == by_attempt[1]["name"]
		and by_attempt[3]["retry_of"] == by_attempt[2]["name"]
	)
	for attempt in (2, 3):  # retries are one-shots, run through the daemon
		one_shot = api.get_doc("BTU Task Schedule", by_attempt[attempt]["schedule"])
		assert one_shot["run_frequency"] == "Once" and one_shot["attempt"] == attempt
	time.sleep(3)
	assert len(logs(api, task=task)) == 3  # no retry after the last attempt
	desk.goto(f"/app/btu-task-log/{by_attempt[3]['name']}")
	headline = desk.page.locator(".form-message .btu-attempts")
	headline.wait_for()
	text = headline.inner_text()
	assert "Attempt 3 of 3." in text and f"Retry of {by_attempt[2]['name']}" in text, text
	assert by_attempt[1]["name"] in text  # the chain of attempts
	desk.shot("automatic-retries-attempt-3")


def test_04_retry_from_a_failed_task_log(desk, api):
	task = new_task(desk, "BTU e2e retry", f"{SAMPLES}.fail", '{"message": "retry me"}')
	desk.click_button("Run now on this server", group="Run")
	desk.dialog()
	desk.close_dialogs()
	first = wait_for(lambda: logs(api, task=task), 30, what="the Failed log")[0]
	desk.open_form("btu-task-log", first["name"])
	desk.click_button("Retry")
	confirm(desk)
	desk.page.locator(".alert-message, .desk-alert").filter(has_text="Retry planned").first.wait_for()
	desk.shot("retry-planned")
	second = wait_for(
		lambda: [r for r in logs(api, task=task) if r["retry_of"] == first["name"]],
		90,
		1.0,
		what="the retry's log",
	)[0]
	assert second["attempt"] == 2 and second["success_fail"] == "Failed"
	desk.open_form("btu-task-log", first["name"])
	desk.page.locator(".form-message .btu-attempts").filter(
		has_text=f"Retried by {second['name']}"
	).wait_for()
	desk.wait_idle()
	assert not desk.page.locator("button.btu-retry").count()  # retried once: no second Retry offered
	desk.shot("retry-not-offered-after-retry")


# --- 3. the Failed Jobs page ----------------------------------------------------------------------------


def crashing_task(desk, api, label: str) -> tuple[str, str]:
	"""A task whose first run kills its work horse in the bench's worker; (task, marker file)."""
	marker = f"/tmp/btu-bench-{TOKEN}-{label}.crashed"
	task = new_task(
		desk, f"BTU e2e crash {label}", f"{SAMPLES}.crash_work_horse", json.dumps({"marker": marker})
	)
	run_in_worker(desk)
	wait_for(lambda: [j for j in failed_jobs(api) if j["task"] == task], 90, 1.0, what="the failed RQ job")
	return task, marker


def test_05_a_dead_work_horse_is_listed_opened_and_requeued(desk, api, bench, bench_config, site2_api):
	task, marker = crashing_task(desk, api, "requeue")
	try:
		desk.goto("/app/btu-failed-jobs")
		row = desk.page.locator("tr[data-job-id]").filter(has_text=task)
		row.wait_for()
		assert "Work-horse terminated unexpectedly" in row.inner_text()
		desk.shot("failed-jobs-page")

		# Issue 21 item 3: the death leaves a Failed Task Log. Frappe's scheduler runs the sweep every
		# minute; on a development site it is off, and on a site just made Frappe first runs its jobs
		# hours later (a job's first run counts from its creation, stamped before the setup wizard set
		# the zone), so after a minute the sweep is run here as the scheduler runs it.
		def failed_log() -> list:
			return [r for r in logs(api, task=task) if r["success_fail"] == "Failed"]

		try:
			dead = wait_for(failed_log, 75, 2.0, what="a Failed log from Frappe's scheduler")[0]
		except AssertionError:
			bench.execute("btu.btu_core.dead_work_horses.record_dead_work_horses")
			dead = wait_for(failed_log, 30, 1.0, what="a Failed log")[0]
		message = api.get_doc("BTU Task Log", dead["name"])["result_message"]
		assert "The work horse running this task died" in message and "Work-horse terminated" in message, (
			message
		)
		if site2_api is not None:  # the other site's page does not show this site's job
			answer = site2_api.call("btu.btu_api.failed_jobs.list_failed_jobs")
			assert answer["site"] == bench_config.site2, answer.get("site")
			assert task not in [j["task"] for j in answer["jobs"]]
		row.locator("[data-action=open]").click()
		dialog = desk.dialog()
		text = dialog.inner_text()
		assert "Work-horse terminated unexpectedly" in text and task in text, text
		assert "btu.btu_core.task_runner.run_enqueued_task" in text
		desk.shot("failed-job-opened")
		dialog.locator(".modal-footer .btn-primary:has-text('Requeue')").click()
		confirm(desk)
		desk.page.locator(".alert-message, .desk-alert").filter(has_text="Requeued as run").first.wait_for()
		wait_for(
			lambda: not [j for j in failed_jobs(api) if j["task"] == task], 20, what="the job out of the page"
		)
		survived = wait_for(
			lambda: [r for r in logs(api, task=task) if r["success_fail"] == "Success"],
			90,
			1.0,
			what="the requeued run",
		)[0]
		assert "not crashing this time" in survived["stdout"]
		assert api.get_doc("BTU Task Schedule", survived["schedule"])["run_frequency"] == "Once"
		desk.goto("/app/btu-failed-jobs")
		desk.wait_idle()
		assert not desk.page.locator("tr[data-job-id]").filter(has_text=task).count()
		desk.shot("failed-job-requeued")
	finally:
		if os.path.exists(marker):
			os.unlink(marker)


def test_06_a_failed_job_is_deleted_from_the_page(desk, api):
	task, marker = crashing_task(desk, api, "delete")
	try:
		job_id = [j for j in failed_jobs(api) if j["task"] == task][0]["job_id"]
		desk.goto("/app/btu-failed-jobs")
		row = desk.page.locator(f'tr[data-job-id="{job_id}"]')
		row.locator("[data-action=delete]").click()
		confirm(desk)
		desk.page.locator(".alert-message, .desk-alert").filter(
			has_text="Deleted failed job"
		).first.wait_for()
		wait_for(
			lambda: not desk.page.locator(f'tr[data-job-id="{job_id}"]').count(), 20, what="the row gone"
		)
		assert job_id not in [j["job_id"] for j in failed_jobs(api)]
		desk.shot("failed-job-deleted")
	finally:
		if os.path.exists(marker):
			os.unlink(marker)


# --- 9. housekeeping ----------------------------------------------------------------------------------


def test_07_delete_task_logs_by_date_range_from_the_list(desk, api, bench):
	task = new_task(desk, "BTU e2e old logs", f"{SAMPLES}.hello", '{"name": "old"}')
	for _ in range(3):
		desk.click_button("Run now on this server", group="Run")
		desk.dialog()
		desk.close_dialogs()
	made = wait_for(
		lambda: (found := logs(api, task=task)) and len(found) == 3 and found, 30, what="three logs"
	)
	for row, started in zip(made, ("2001-01-05 10:00:00", "2001-01-20 10:00:00", "2001-02-10 10:00:00")):
		bench.execute(
			"frappe.db.set_value",
			dt="BTU Task Log",
			dn=row["name"],
			field="date_time_started",
			val=started,
		)
	desk.goto("/app/btu-task-log")
	desk.click_button("Delete by date range")
	dialog = desk.dialog()
	for fieldname, iso in (("from_date", "2001-01-01"), ("to_date", "2001-01-31")):
		box = dialog.locator(f'.frappe-control[data-fieldname="{fieldname}"] input')
		box.fill(desk.page.evaluate("(d) => frappe.datetime.str_to_user(d)", iso))  # the user's date format
		desk.page.keyboard.press("Tab")
	dialog.locator('.frappe-control[data-fieldname="task"] input').fill(task)
	desk.page.keyboard.press("Tab")
	dialog.locator(".btu-delete-count").filter(has_text="2 Task Logs").wait_for()
	desk.shot("delete-logs-by-date-range")
	dialog.locator(".modal-footer .btn-primary:has-text('Delete')").click()
	confirm(desk)
	desk.page.locator(".alert-message, .desk-alert").filter(has_text="Deleted 2 Task Logs").first.wait_for()
	left = {row["name"] for row in logs(api, task=task)}
	assert left == {made[2]["name"]}, left


def log_settings_days(api: Api) -> int | None:
	rows = api.get_doc("Log Settings", "Log Settings")["logs_to_clear"]
	return next((r["days"] for r in rows if r["ref_doctype"] == "BTU Task Log"), None)


def test_08_log_retention_is_log_settings_row(desk, api):
	before = log_settings_days(api)
	new_days = 61 if before != 61 else 62
	try:
		desk.goto("/app/btu-configuration")
		desk.page.wait_for_function("() => cur_frm && cur_frm.doc.doctype === 'BTU Configuration'")
		assert desk.doc()["log_retention_days"] == before
		desk.type_into("log_retention_days", str(new_days))
		desk.save()
		assert log_settings_days(api) == new_days
		desk.field("log_retention_days").scroll_into_view_if_needed()
		desk.shot("log-retention-saved")
	finally:
		if before is not None:
			api.call(
				"frappe.client.set_value",
				doctype="BTU Configuration",
				name="BTU Configuration",
				fieldname="log_retention_days",
				value=before,
			)
	assert log_settings_days(api) == before


def test_09_send_test_email_talks_to_the_mail_server(desk, api):
	config = api.get_doc("BTU Configuration", "BTU Configuration")
	with SMTPSink() as sink:
		account = api.insert(
			{
				"doctype": "Email Account",
				"email_account_name": f"BTU e2e SMTP {TOKEN}",
				"email_id": f"btu-e2e-{TOKEN}@example.com",
				"enable_outgoing": 1,
				"smtp_server": "127.0.0.1",
				"smtp_port": sink.port,
				"no_smtp_authentication": 1,
			}
		)["name"]
		try:
			api.call(
				"frappe.client.set_value",
				doctype="BTU Configuration",
				name="BTU Configuration",
				fieldname="email_account",
				value=account,
			)
			desk.goto("/app/btu-configuration")
			desk.click_button("Send test email")
			dialog = desk.dialog()
			dialog.locator('.frappe-control[data-fieldname="recipient"] input').fill(
				f"ops-{TOKEN}@example.com"
			)
			dialog.locator(".modal-footer .btn-primary:has-text('Send')").click()
			result = desk.page.locator(".modal.show .modal-dialog").filter(has_text="Test email sent")
			result.wait_for()
			assert account in result.inner_text()
			desk.shot("test-email-sent")
			desk.close_dialogs()
			received = wait_for(lambda: sink.messages, 20, what="the mail server to receive the test email")
			assert received[0].recipients == [f"ops-{TOKEN}@example.com"]
			assert received[0].subject.endswith(
				"Test email from BTU on " + desk.page.evaluate("() => frappe.boot.sitename")
			)
		finally:
			api.call(
				"frappe.client.set_value",
				doctype="BTU Configuration",
				name="BTU Configuration",
				fieldname="email_account",
				value=config.get("email_account") or "",
			)
			for row in api.get_list("Email Queue", filters=[["reference_doctype", "=", "BTU Configuration"]]):
				api.delete("Email Queue", row["name"])
			api.delete("Email Account", account)


def test_10_the_workspace_shows_runs_and_failures_per_day(desk, api):
	source = "btu.btu_core.dashboard_chart_source.btu_runs_per_day.btu_runs_per_day.get"
	chart = api.call(source, chart_name="BTU Runs and Failures")
	assert len(chart["labels"]) == 30 and [d["name"] for d in chart["datasets"]] == ["Runs", "Failures"]
	task = api.insert_submitted(
		{
			"doctype": "BTU Task",
			"desc_short": f"BTU e2e chart {TOKEN}",
			"function_string": f"{SAMPLES}.fail",
			"max_task_duration": 60,
		}
	)["name"]
	for _ in range(2):
		assert api.call("btu.btu_api.endpoints.run_task_now", task=task)["status"] == "Failed"
	assert api.call("btu.btu_api.endpoints.run_task_now", task=task) is not None
	one_task = api.call(source, chart_name="BTU Runs and Failures", filters=json.dumps({"task": task}))
	assert [sum(d["values"]) for d in one_task["datasets"]] == [3, 3]  # its three (failed) runs
	desk.goto("/app/btu")
	widget = desk.page.locator(".widget.dashboard-widget-box").filter(has_text="BTU Runs and Failures")
	widget.locator("svg").first.wait_for()
	for card in ("BTU Runs Today", "BTU Failed Runs Today"):
		desk.page.locator(".widget.number-widget-box").filter(has_text=card).first.wait_for()
	desk.page.locator(".shortcut-widget-box").filter(has_text="Failed Jobs").first.wait_for()
	time.sleep(1.0)  # the chart's bars animate in
	desk.shot("workspace-chart")
