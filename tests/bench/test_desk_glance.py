"""Issue 23 in Desk (headless Chromium, the bench's own worker and daemon): runs at a glance on the
schedule list, the task form and the Task Log list; one-shots apart with what became of each; a
task's deletion with its schedules, its logs keeping the names as text; the status page on a phone.
Every record made is deleted at the end of the session (``site_left_as_found``)."""

from __future__ import annotations

import json
import uuid

import pytest

from .harness import wait_for

SAMPLES = "btu.btu_core.sample_tasks"
TOKEN = uuid.uuid4().hex[:6]
STORY: dict[str, str] = {}
VALIDATION_ERRORS = (r"417", r"EXPECTATION FAILED", r"LinkExistsError", r"Traceback")

pytestmark = pytest.mark.usefixtures("no_console_errors")


def schedule_row(api, name: str) -> dict:
	return api.get_list(
		"BTU Task Schedule",
		filters=[["name", "=", name]],
		fields=["name", "last_status", "last_log", "next_run", "enabled"],
	)[0]


def list_rows(desk) -> str:
	desk.page.locator(".frappe-list .result").first.wait_for()
	desk.wait_idle()
	return desk.page.locator(".frappe-list .result").inner_text()


def test_01_a_task_with_a_recurring_schedule_and_one_shots(api):
	task = api.insert_submitted(
		{
			"doctype": "BTU Task",
			"desc_short": f"BTU e2e glance {TOKEN}",
			"function_string": f"{SAMPLES}.hello",
			"arguments": json.dumps({"name": "glance"}),
			"max_task_duration": 60,
		}
	)
	STORY["task"] = task["name"]
	recurring = api.insert(
		{
			"doctype": "BTU Task Schedule",
			"task": task["name"],
			"run_frequency": "Cron Style",
			"cron_string": "* * * * *",
			"cron_timezone": "Europe/Paris",
		}
	)
	STORY["recurring"] = recurring["name"]
	STORY["ran"] = api.call("btu.api.run_now", task=task["name"])
	STORY["cancelled"] = api.call("btu.api.run_later", task=task["name"], delay=3600)
	assert api.call("btu.api.cancel", run_id=STORY["cancelled"]) is True
	STORY["pending"] = api.call("btu.api.run_later", task=task["name"], delay=7200)
	wait_for(
		lambda: schedule_row(api, STORY["ran"])["last_status"] == "Success",
		90,
		1.0,
		what="the one-shot's run",
	)
	row = wait_for(
		lambda: (r := schedule_row(api, STORY["recurring"]))["last_status"] == "Success" and r,
		150,
		2.0,
		what="a run of the recurring schedule",
	)
	assert row["next_run"] and row["last_log"]


def test_02_the_schedule_list_shows_runs_at_a_glance_and_keeps_one_shots_apart(desk):
	desk.goto(f"/app/btu-task-schedule?task={STORY['task']}")
	desk.click_button("Recurring", group="Show")

	def recurring_only() -> str | None:
		text = list_rows(desk)
		return text if STORY["ran"] not in text else None

	text = wait_for(recurring_only, 20, 0.5, what="the recurring filter")
	assert STORY["recurring"] in text or f"BTU e2e glance {TOKEN}" in text, text
	assert STORY["ran"] not in text and STORY["pending"] not in text  # one-shots apart
	recurring = desk.page.locator(f".list-row-container:has(a[data-name='{STORY['recurring']}'])").first
	row_text = recurring.inner_text()
	assert "Europe/Paris" in row_text and "Success" in row_text, row_text
	desk.shot("schedule-list-recurring")
	desk.click_button("One-shot runs", group="Show")
	wait_for(lambda: STORY["ran"] in list_rows(desk), 20, 0.5, what="the one-shots filter")
	for name, label in (
		(STORY["ran"], "Ran: Success"),
		(STORY["cancelled"], "Cancelled"),
		(STORY["pending"], "Runs once"),
	):
		row = desk.page.locator(f".list-row-container:has(a[data-name='{name}'])").first
		row.wait_for()
		assert label in row.inner_text(), (name, row.inner_text())
	assert not desk.page.locator(f".list-row-container:has(a[data-name='{STORY['recurring']}'])").count()
	desk.shot("schedule-list-one-shots")


def test_03_the_task_form_shows_next_and_last_run_and_its_connections(desk):
	desk.open_form("btu-task", STORY["task"])
	headline = desk.page.locator(".form-message:visible").filter(has_text="Next run")
	headline.wait_for()
	text = headline.inner_text()
	assert "Last run:" in text and "Success" in text, text
	connections = desk.page.locator(".form-dashboard-section:has-text('Connections'), .form-links").first
	connections.wait_for()
	links = connections.inner_text()
	assert "BTU Task Schedule" in links and "BTU Task Log" in links, links
	desk.shot("task-form-at-a-glance")


def test_04_the_task_log_list_shows_status_once_and_durations_that_fit(desk):
	desk.goto(f"/app/btu-task-log?task={STORY['task']}")
	list_rows(desk)
	columns = [
		c.strip() for c in desk.page.locator(".list-row-head").first.inner_text().splitlines() if c.strip()
	]
	assert columns.count("Status") == 1 and "Task" not in columns, columns  # no column twice
	assert "Duration" in columns, columns
	cells = desk.page.locator(".list-row-container .list-row-col").all_inner_texts()
	assert any(c.strip().endswith(" ms") or c.strip().endswith(" s") for c in cells), cells
	assert not any(c.strip() in ("0", "0.000") for c in cells), cells
	desk.shot("task-log-list")


def test_05_deleting_the_task_names_its_schedules_then_deletes_it_with_them(desk, api):
	api.call("frappe.client.cancel", doctype="BTU Task", name=STORY["task"])
	desk.open_form("btu-task", STORY["task"])
	with desk.expecting_errors(*VALIDATION_ERRORS):
		desk.menu("Delete")
		desk.dialog().locator(".btn-primary:has-text('Yes')").click()
		message = (
			desk.page.locator(".modal.show .modal-dialog").filter(has_text="Delete with its schedules").first
		)
		message.wait_for()
		text = message.inner_text()
		assert STORY["recurring"] in text and STORY["pending"] in text, text
		assert STORY["ran"] not in text  # a finished one-shot does not hold the task
		desk.shot("task-delete-refused-with-names")
		desk.close_dialogs()
	log = api.get_list("BTU Task Log", filters=[["task", "=", STORY["task"]]], fields=["name"])[0]["name"]
	desk.menu("Delete with its schedules")
	desk.dialog().locator(".btn-primary:has-text('Yes')").click()
	wait_for(lambda: STORY["task"] not in api.names("BTU Task"), 30, what="the task deleted")
	assert not api.get_list("BTU Task Schedule", filters=[["task", "=", STORY["task"]]])
	desk.open_form("btu-task-log", log)
	task_field = desk.field("task")
	assert "(deleted)" in task_field.inner_text() and not task_field.locator("a").count(), (
		task_field.inner_text()
	)
	desk.shot("task-log-of-a-deleted-task")


def test_06_the_status_page_fits_a_phone(desk):
	desk.page.set_viewport_size({"width": 390, "height": 844})
	try:
		desk.goto("/app/btu-scheduler-status")
		desk.page.locator(".btu-status-page .btu-card").first.wait_for()
		desk.wait_idle()
		overflow = desk.page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
		assert overflow <= 1, f"the page is {overflow} px wider than the phone"
		desk.shot("status-page-390px")
	finally:
		desk.page.set_viewport_size({"width": 1400, "height": 1000})
