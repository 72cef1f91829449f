"""One-shot runs, the Python API, the overlap policy and pause on the real bench: Desk in headless
Chromium, `bench execute`, the bench's own worker and the BTU daemon. The tests run in order and share
what they made (``STORY``); every record is deleted at the end of the session (``site_left_as_found``).
Pausing touches the site for a few seconds at a time (other runs due meanwhile wait, then run)."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from zoneinfo import ZoneInfo

import pytest

from .harness import wait_for
from .test_desk import make_task

SAMPLES = "btu.btu_core.sample_tasks"
TOKEN = uuid.uuid4().hex[:6]
STORY: dict[str, str] = {}

pytestmark = pytest.mark.usefixtures("no_console_errors")


def logs_of(api, run_id: str) -> list[dict]:
	return api.get_list(
		"BTU Task Log",
		filters=[["schedule", "=", run_id]],
		fields=["name", "success_fail", "stdout", "attempt", "retry_of", "task"],
	)


def state_of(api, schedule: str) -> dict:
	return api.call("btu.btu_api.endpoints.schedule_daemon_state", schedule=schedule)


def headline(desk) -> str:
	return " ".join(
		t.strip()
		for t in desk.page.locator(".form-message:visible > div:not(.close-message)").all_inner_texts()
	)


def fill_dialog_field(desk, fieldname: str, text: str) -> None:
	"""Type into a field of the open dialog as a user does (no Escape: it would close the dialog)."""
	box = desk.dialog().locator(f'.frappe-control[data-fieldname="{fieldname}"] input').first
	box.click()
	box.fill("")
	box.type(text)
	desk.dialog().locator(".modal-title").click()  # leave the field (closes a picker or a list)
	time.sleep(0.3)


def open_run_once_dialog(desk, task: str) -> None:
	desk.goto(f"/app/btu-task/{task}")
	desk.click_button("Run once at...", group="Run")
	desk.dialog().locator('.frappe-control[data-fieldname="run_at"]').wait_for()
	desk.wait_idle()  # its defaults (BTU Configuration's zone, in an hour) are in


def schedule_from_dialog(desk, zone: str, wall: dt.datetime, overrides: str = "") -> str:
	fill_dialog_field(desk, "time_zone", zone)
	user_text = desk.page.evaluate(
		"(v) => frappe.datetime.str_to_user(v)", wall.strftime("%Y-%m-%d %H:%M:%S")
	)
	fill_dialog_field(desk, "run_at", user_text)
	assert desk.page.evaluate("() => cur_dialog.get_value('run_at')") == wall.strftime("%Y-%m-%d %H:%M:%S")
	assert desk.page.evaluate("() => cur_dialog.get_value('time_zone')") == zone
	if overrides:
		editor = desk.dialog().locator('.frappe-control[data-fieldname="overrides"]')
		editor.locator(".ace_content").click()
		desk.page.keyboard.press("Control+A")
		desk.page.keyboard.press("Delete")
		editor.locator(".ace_text-input").type(overrides)
	desk.shot("run-once-dialog")
	desk.dialog().locator(".btn-primary:has-text('Schedule the run')").click()
	reply = desk.page.locator(".modal.show:has-text('Run scheduled')")
	reply.wait_for()
	run_id = reply.locator("a[href*='/app/btu-task-schedule/']").first.inner_text().strip()
	desk.shot("run-once-scheduled")
	desk.close_dialogs()
	return run_id


def test_01_run_once_from_the_task_form(desk, api):
	STORY["task"] = make_task(desk, f"BTU e2e once {TOKEN}", f"{SAMPLES}.hello", '{"name": "task"}')
	open_run_once_dialog(desk, STORY["task"])
	zone = "Europe/Paris"
	# Desk's time format has no seconds: the next whole minute at least a minute away.
	wall = (dt.datetime.now(ZoneInfo(zone)) + dt.timedelta(seconds=120)).replace(
		second=0, microsecond=0, tzinfo=None
	)
	run_id = schedule_from_dialog(desk, zone, wall, overrides='{"name": "once"}')
	STORY["once"] = run_id
	doc = api.get_doc("BTU Task Schedule", run_id)
	assert (doc["run_frequency"], doc["enabled"], doc["cron_timezone"]) == ("Once", 1, zone)
	assert doc["run_at"].startswith(wall.strftime("%Y-%m-%d %H:%M:%S"))  # as typed: not shifted to any zone
	assert json.loads(doc["argument_overrides"]) == {"name": "once"}
	fire = int(wall.replace(tzinfo=ZoneInfo(zone)).timestamp())
	STORY["once_fire"] = str(fire)
	wait_for(lambda: state_of(api, run_id).get("one_shot", {}).get("state") == "pending", 30, what="planned")


def test_02_the_one_shot_among_the_upcoming_runs(desk, bench, bench_config):
	run_id = STORY["once"]
	desk.goto("/app/btu-scheduler-status")
	row = desk.page.locator(f".btu-status-page tr:has(a:text-is('{run_id}'))")
	row.wait_for()
	assert "once" in row.inner_text()
	desk.shot("status-page-upcoming-one-shot")
	listed = bench.bench("btu-scheduler", "list", site=bench_config.site).stdout
	line = next(line for line in listed.splitlines() if run_id in line)
	utc = dt.datetime.fromtimestamp(int(STORY["once_fire"]), dt.timezone.utc).strftime(
		"%Y-%m-%d %H:%M:%S UTC"
	)
	# its rule ("once") and the daemon's word that it is planned by the one-shot's current Run At
	assert utc in line and " once " in line and line.rstrip().endswith("confirmed"), line


def test_03_its_form_says_when_it_runs(desk):
	desk.open_form("btu-task-schedule", STORY["once"])
	wait_for(lambda: "Runs once" in headline(desk), 20, what="the headline")
	text = headline(desk)
	assert "Europe/Paris" in text, text
	assert desk.page.locator('.frappe-control[data-fieldname="run_at"]:visible').count() == 1
	assert desk.page.locator('.frappe-control[data-fieldname="cron_string"]:visible').count() == 0
	assert "Europe/Paris" in desk.field("run_at").inner_text()  # read in the schedule's zone, says so
	desk.shot("one-shot-form-pending")


def test_04_it_runs_once_in_the_benchs_worker_and_never_again(desk, api, bench, bench_config):
	run_id = STORY["once"]
	log = wait_for(lambda: logs_of(api, run_id), 180, 2.0, what="the one-shot's run")[0]
	assert log["success_fail"] == "Success" and "Hello, once!" in log["stdout"], log
	assert log["attempt"] == 1 and not log["retry_of"]
	STORY["once_log"] = log["name"]
	assert api.get_doc("BTU Task Schedule", run_id)["enabled"] == 0  # claimed by the worker; history stays
	desk.open_form("btu-task-schedule", run_id)
	wait_for(lambda: "Ran once: Success" in headline(desk), 20, what="the headline")
	assert log["name"] in headline(desk)
	desk.shot("one-shot-form-ran")
	desk.goto(f"/app/btu-task-log/{log['name']}")
	assert desk.doc()["attempt"] == 1 and desk.doc()["schedule"] == run_id
	desk.shot("one-shot-task-log")
	bench.bench("btu-scheduler", "refresh", site=bench_config.site)
	time.sleep(3)
	assert len(logs_of(api, run_id)) == 1
	assert state_of(api, run_id)["next_run"] is None


def test_05_a_pending_one_shot_is_cancelled_from_its_form(desk, api):
	open_run_once_dialog(desk, STORY["task"])
	zone = "America/New_York"
	wall = (dt.datetime.now(ZoneInfo(zone)) + dt.timedelta(hours=2)).replace(
		second=0, microsecond=0, tzinfo=None
	)
	run_id = schedule_from_dialog(desk, zone, wall)
	wait_for(lambda: state_of(api, run_id)["next_run"] is not None, 30, what="planned")
	desk.open_form("btu-task-schedule", run_id)
	desk.click_button("Cancel this run")
	desk.dialog().locator(".btn-primary:has-text('Yes')").click()
	desk.page.locator(".alert-message, .desk-alert").filter(has_text="cancelled").first.wait_for()
	wait_for(lambda: state_of(api, run_id)["next_run"] is None, 30, what="removed from the daemon")
	desk.open_form("btu-task-schedule", run_id)
	wait_for(lambda: "Cancelled" in headline(desk), 20, what="the headline")
	desk.shot("one-shot-cancelled")
	assert api.call("btu.api.cancel", run_id=run_id) is False
	desk.goto(f"/app/btu-task-schedule?task={STORY['task']}")
	row = desk.page.locator(f".list-row-container:has(.list-row-checkbox[data-name='{run_id}'])")
	row.wait_for()
	assert "Cancelled" in row.inner_text(), row.inner_text()  # what became of it (issue 23)
	desk.shot("schedule-list-one-shots")


def test_06_the_python_api_through_bench_execute(bench, bench_config, api):
	site = bench_config.site
	run_id = bench.execute("btu.api.run_now", site, task=STORY["task"], overrides={"name": "api"})
	log = wait_for(lambda: logs_of(api, run_id), 120, 2.0, what="run_now's run")[0]
	assert log["success_fail"] == "Success" and "Hello, api!" in log["stdout"]
	assert bench.execute("btu.api.run_status", site, run_id=run_id)["state"] == "Success"
	retry = bench.execute(
		"btu.api.run_later", site, task=STORY["task"], delay=1, attempt=2, retry_of=log["name"]
	)
	retried = wait_for(lambda: logs_of(api, retry), 120, 2.0, what="the retry's run")[0]
	assert (retried["attempt"], retried["retry_of"]) == (2, log["name"])
	later = bench.execute(
		"btu.api.run_later", site, task=STORY["task"], at="2099-12-24 14:00:00 Europe/Paris"
	)
	assert bench.execute("btu.api.run_status", site, run_id=later)["fire_time"].startswith(
		"Once, at 2099-12-24 14:00:00 Europe/Paris"
	)
	assert bench.execute("btu.api.cancel", site, run_id=later) is True
	transient = bench.execute(
		"btu.api.run_function", site, function_path=f"{SAMPLES}.hello", arguments={"name": "transient"}
	)
	task = None
	log = wait_for(lambda: logs_of(api, transient), 120, 2.0, what="the transient run")[0]
	task = log["task"]
	assert log["success_fail"] == "Success" and "Hello, transient!" in log["stdout"]
	# (Frappe may give a deleted record's name to the next new one: look for these very records.)
	mine = [["name", "=", transient], ["task", "=", task]]
	wait_for(lambda: not api.get_list("BTU Task Schedule", filters=mine), 30, what="the one-shot deleted")
	assert not api.get_list(
		"BTU Task", filters=[["name", "=", task], ["function_string", "=", f"{SAMPLES}.hello"]]
	)
	refused = bench.bench(
		"execute", "btu.api.run_later", "--kwargs", json.dumps({"task": STORY["task"], "at": "tomorrow"}),
		site=site, check=False,
	)  # fmt: skip
	assert refused.returncode != 0 and "is not a date and time" in refused.stdout + refused.stderr


def test_07_overlap_skip_on_a_schedule_form(desk, api):
	slow = make_task(desk, f"BTU e2e slow {TOKEN}", f"{SAMPLES}.sleep", '{"seconds": 12}', duration=60)
	desk.goto(f"/app/btu-task/{slow}")
	desk.click_button("Task Schedule", group="Create")
	desk.page.wait_for_function(
		"() => cur_frm && cur_frm.doctype === 'BTU Task Schedule' && cur_frm.doc.task"
	)
	desk.type_into("run_frequency", "Cron Style")
	desk.type_into("cron_string", "*/5 * * * * *")
	desk.type_into("overlap_policy", "Skip")
	desk.save()
	schedule = desk.doc()["name"]
	STORY["overlap"] = schedule
	try:
		skipped = wait_for(lambda: state_of(api, schedule)["skipped"], 90, 2.0, what="a skipped fire time")
	finally:
		api.call(
			"frappe.client.set_value",
			doctype="BTU Task Schedule",
			name=schedule,
			fieldname="enabled",
			value=0,
		)
	assert skipped[0]["reason"] == "overlap" and skipped[0]["previous_status"] in ("queued", "started")
	desk.open_form("btu-task-schedule", schedule)
	# "1 recent fire time skipped: ..." or "N recent fire times skipped; last: ..."
	wait_for(lambda: re.search(r"recent fire times? skipped", headline(desk)), 20, what="the headline")
	desk.shot("overlap-skips-headline")
	desk.page.locator(".btu-show-skipped").first.click()
	table = desk.dialog().locator("table.btu-skipped")
	table.wait_for()
	assert "overlap" in table.inner_text() and "the previous run was still" in table.inner_text()
	desk.shot("overlap-skips-table")
	desk.close_dialogs()
	runs = api.get_list("BTU Task Log", filters=[["schedule", "=", schedule]], fields=["name"])
	assert len(runs) <= 2  # at most one run at a time: nothing piled up behind the 12-second runs


def test_08_pause_all_schedules_and_pause_scheduler(desk, api, bench, bench_config):
	site = bench_config.site
	status = lambda: bench.execute("btu.api.run_status", site, run_id=run_id)  # noqa: E731
	desk.goto("/app/btu-configuration")
	desk.type_into("pause_all_schedules", "1")
	run_id = None
	try:
		desk.save()
		wait_for(lambda: "are paused" in headline(desk), 20, what="the configuration's headline")
		desk.shot("configuration-paused")
		wait_for(
			lambda: (
				"PAUSED: BTU Configuration: Pause All Schedules is set"
				in bench.bench("btu-scheduler", "status", site=site).stdout
			),
			30,
			what="the daemon to pause the site",
		)
		run_id = bench.execute("btu.api.run_now", site, task=STORY["task"], overrides={"name": "after pause"})
		desk.goto("/app/btu-scheduler-status")
		desk.page.locator(".btu-paused:has-text('Pause All Schedules')").wait_for()
		desk.page.locator(
			".indicator-pill:has-text('site paused'), .indicator:has-text('site paused')"
		).first.wait_for()
		desk.shot("status-page-paused")
		time.sleep(5)
		assert not logs_of(api, run_id), "nothing runs while the site is paused"
		assert status()["state"] == "pending"
	finally:
		desk.goto("/app/btu-configuration")
		desk.type_into("pause_all_schedules", "")
		desk.save()
	log = wait_for(lambda: logs_of(api, run_id), 120, 2.0, what="the run due during the pause")[0]
	assert "Hello, after pause!" in log["stdout"]

	config_path = f"{bench.path}/sites/{site}/site_config.json"
	had_key = "pause_scheduler" in json.loads(open(config_path, encoding="utf-8").read())
	bench.bench("scheduler", "pause", site=site)  # Frappe's command: pause_scheduler in site_config.json
	try:
		text = wait_for(
			lambda: (lambda out: "PAUSED" in out and out)(
				bench.bench("btu-scheduler", "status", site=site).stdout
			),
			20,
			what="the daemon to notice pause_scheduler",
		)
		assert "site_config.json: pause_scheduler is set" in text
		desk.goto("/app/btu-scheduler-status")
		desk.page.locator(".btu-paused:has-text('pause_scheduler')").wait_for()
		desk.shot("status-page-pause-scheduler")
	finally:
		bench.bench("scheduler", "resume", site=site)
		if not had_key:  # the site's config as it was (update_site_config removes a key set to "None")
			bench.execute("frappe.installer.update_site_config", site, key="pause_scheduler", value="None")
	wait_for(
		lambda: "PAUSED" not in bench.bench("btu-scheduler", "status", site=site).stdout, 20, what="resumed"
	)
