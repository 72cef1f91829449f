"""Issue 24 item 3 on the real bench (headless Chromium, the bench's own daemon and worker): chains. In
Desk, a submitted task A gets a *Then Run* row (task B takes A's result as its argument ``name``); A runs
in the bench's worker (*Run now in a worker*), its end starts B as a one-shot that the daemon plans and
the worker runs; both logs are opened in Desk (B's *Chained From*, A's *Chained Runs* connection); a loop
is refused on save with the loop named; a hostile task description and result stay text. Every record
made is deleted at the end of the session (``site_left_as_found``)."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from .harness import wait_for

SAMPLES = "btu.btu_core.sample_tasks"
TOKEN = uuid.uuid4().hex[:6]
HOSTILE = "<img src=x onerror=alert(1)>"
STORY: dict[str, str] = {}
VALIDATION_ERRORS = (r"417", r"EXPECTATION FAILED", r"ValidationError", r"Traceback")

pytestmark = pytest.mark.usefixtures("no_console_errors")


def logs_of(api, **filters) -> list[dict]:
	return api.get_list(
		"BTU Task Log",
		filters=[[key, "=", value] for key, value in filters.items()],
		fields=["name", "task", "success_fail", "chained_from", "schedule", "result_message", "stdout"],
	)


def add_then_run_row(desk, next_task: str, result_argument: str = "") -> None:
	"""In the open task form: expand Then Run, add a row, fill it in the row's form, close it."""
	section = desk.page.locator(".form-section:has(.frappe-control[data-fieldname='then_run'])").first
	head = section.locator(".section-head.collapsed")
	if head.count():
		head.first.click()
	grid = desk.page.locator(".frappe-control[data-fieldname='then_run']").first
	grid.scroll_into_view_if_needed()
	grid.locator(".grid-add-row").first.click()
	row = grid.locator(".grid-body .grid-row").last
	row.locator(".btn-open-row, .grid-row-open-icon, [data-action='edit']").first.click()
	form = desk.page.locator(".grid-row-open").first
	form.wait_for()
	link = form.locator(".frappe-control[data-fieldname='next_task'] input").first
	link.click()
	link.type(next_task, delay=30)
	offered = desk.page.locator("ul[role=listbox]:visible [role=option], .awesomplete ul:visible > li")
	option = offered.filter(has_text=next_task).first
	option.wait_for()
	assert not desk.page.locator("img[src='x']").count(), offered.all_inner_texts()  # titles are text
	option.click()
	if result_argument:
		box = form.locator(".frappe-control[data-fieldname='result_argument'] input").first
		box.click()
		box.fill(result_argument)
		box.blur()
	time.sleep(0.3)
	desk.page.wait_for_function(
		"(t) => (cur_frm.doc.then_run || []).some((r) => r.next_task === t)", arg=next_task
	)
	form.locator(".grid-collapse-row, .btn-close-row").first.click()
	time.sleep(0.3)


def test_01_a_then_run_row_added_in_desk_runs_b_after_a_with_as_result(desk, api):
	a = api.insert_submitted(
		{
			"doctype": "BTU Task",
			"desc_short": f"BTU e2e chain A {TOKEN} {HOSTILE}",
			"function_string": f"{SAMPLES}.hello",
			"arguments": json.dumps({"name": f"{HOSTILE} chain {TOKEN}"}),
			"max_task_duration": 60,
		}
	)
	b = api.insert_submitted(
		{
			"doctype": "BTU Task",
			"desc_short": f"BTU e2e chain B {TOKEN} {HOSTILE}",
			"function_string": f"{SAMPLES}.hello",
			"max_task_duration": 60,
		}
	)
	STORY.update(a=a["name"], b=b["name"])
	desk.open_form("btu-task", STORY["a"])
	add_then_run_row(desk, STORY["b"], "name")
	desk.save()
	saved = api.get_doc("BTU Task", STORY["a"])["then_run"]
	assert [(r["next_task"], r["run_on"], r["result_argument"]) for r in saved] == [
		(STORY["b"], "Success", "name")
	], saved
	assert not desk.page.locator("img[src='x']").count()  # B's description in the grid is text
	desk.shot("task-a-then-run-row")

	desk.click_button("Run now in a worker", group="Run")
	desk.page.locator(".alert-message, .desk-alert").filter(has_text="queued").first.wait_for()
	first = wait_for(
		lambda: [r for r in logs_of(api, task=STORY["a"]) if r["success_fail"] == "Success"],
		120,
		1.0,
		what="A's run in the bench's worker",
	)[0]
	STORY["a_log"] = first["name"]
	chained = wait_for(
		lambda: [r for r in logs_of(api, chained_from=STORY["a_log"]) if r["success_fail"] == "Success"],
		120,
		1.0,
		what="B's run, chained from A's log (a one-shot through the daemon and the worker)",
	)
	assert len(chained) == 1 and chained[0]["task"] == STORY["b"], chained
	STORY["b_log"] = chained[0]["name"]
	assert json.loads(chained[0]["result_message"]) == {"greeted": {"greeted": f"{HOSTILE} chain {TOKEN}"}}
	one_shot = api.get_doc("BTU Task Schedule", chained[0]["schedule"])
	assert (one_shot["run_frequency"], one_shot["chained_from"], one_shot["enabled"]) == (
		"Once",
		STORY["a_log"],
		0,
	), one_shot
	time.sleep(3)  # exactly once: nothing more follows
	assert len(logs_of(api, chained_from=STORY["a_log"])) == 1


def test_02_both_logs_show_the_link_in_desk(desk):
	desk.open_form("btu-task-log", STORY["b_log"])
	link = desk.field("chained_from")
	link.wait_for()
	assert STORY["a_log"] in link.inner_text(), link.inner_text()
	assert HOSTILE in desk.page.locator(".frappe-control[data-fieldname='result_message']").inner_text()
	assert not desk.page.locator("img[src='x']").count()
	desk.shot("log-b-chained-from")

	desk.field("chained_from").locator("a").first.click()
	desk.page.wait_for_function("(n) => window.cur_frm && cur_frm.doc.name === n", arg=STORY["a_log"])
	desk.wait_idle()
	connections = desk.page.locator(".form-dashboard-section:has-text('Chained Runs')").first
	connections.wait_for()
	item = connections.locator(".document-link[data-doctype='BTU Task Log']").first
	item.wait_for()
	desk.page.wait_for_function(
		"() => [...document.querySelectorAll(\".document-link[data-doctype='BTU Task Log'] .count\")]"
		".some((e) => e.textContent.trim() === '1')"
	)
	assert not desk.page.locator("img[src='x']").count()
	desk.shot("log-a-chained-runs")
	item.locator(".badge-link, a").first.click()
	desk.page.wait_for_url(lambda url: "/app/btu-task-log" in url and "chained_from" in url)
	desk.wait_idle()
	desk.page.locator(f".list-row-container:has(a[data-name='{STORY['b_log']}'])").first.wait_for()
	desk.shot("chained-runs-list")


def test_03_a_loop_is_refused_in_desk_with_the_loop_named(desk, api):
	desk.open_form("btu-task", STORY["b"])
	add_then_run_row(desk, STORY["a"])
	with desk.expecting_errors(*VALIDATION_ERRORS):
		desk.page.keyboard.press("Control+S")
		text = desk.dialog().inner_text()
		loop = f"{STORY['b']} → {STORY['a']} → {STORY['b']}"
		assert "Then Run would make a loop" in text and loop in text, text
		assert not desk.page.locator("img[src='x']").count()
		desk.shot("loop-refused")
		desk.close_dialogs()
	assert api.get_doc("BTU Task", STORY["b"])["then_run"] == []
	desk.page.evaluate("() => { cur_frm.reload_doc(); }")
	desk.wait_idle()
