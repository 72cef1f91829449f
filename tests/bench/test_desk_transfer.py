"""Issue 23, item 4 on the real bench: a task and its schedule move from BTU_SITE to BTU_SITE2.

* Fixtures: the two calls ``bench export-fixtures`` and ``bench migrate`` make for an app whose hooks
  name BTU records (``export_json`` on the source, ``import_doc`` per file on the target), run with
  ``bench execute``, the schedule's file first (migrate reads files in no set order).
* Data Import and Export in Desk (Chromium): the records selected on the source's lists, *Actions >
  Export* with every field, then on the target a Data Import of each file (*BTU Task* offered as its
  Document Type, *Submit After Import*), names kept, the source's run state left behind.

Everything made on either site is deleted at the end (site2's records, Data Imports and their files
by this module; site1's by the session's ``site_left_as_found``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from .harness import wait_for

SAMPLES = "btu.btu_core.sample_tasks"
TOKEN = uuid.uuid4().hex[:6]
GROUP = f"e2e-transfer-{TOKEN}"
STORY: dict[str, str] = {}

pytestmark = pytest.mark.usefixtures("no_console_errors")


@pytest.fixture(scope="module")
def site2(site2_api):
	if site2_api is None:
		pytest.skip("set BTU_SITE2 to a second site with BTU installed: records move from BTU_SITE to it")
	yield site2_api
	for name in site2_api.names("Data Import"):
		if name in STORY.get("imports", ""):
			site2_api.delete("Data Import", name)
	for row in site2_api.get_list("File", filters=[["file_name", "like", f"%{TOKEN}%"]]):
		site2_api.delete("File", row["name"])
	for doctype in ("BTU Task Schedule", "BTU Task"):
		for row in site2_api.get_list(
			doctype,
			filters=[["name", "in", [STORY.get("task"), STORY.get("schedule")]]],
			fields=["name", "docstatus"],
		):
			if row.get("docstatus") == 1:
				site2_api.call("frappe.client.cancel", doctype=doctype, name=row["name"])
			site2_api.delete(doctype, row["name"])


@pytest.fixture(scope="module")
def exchange():
	"""A folder both root (the browser's downloads) and the bench user (bench execute) can use."""
	folder = tempfile.mkdtemp(prefix=f"btu-transfer-{TOKEN}-")
	os.chmod(folder, 0o777)
	yield Path(folder)
	shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def desk2(browser, bench_config, site2):
	"""A logged-in Desk tab on BTU_SITE2 (its own web server when the bench's serves site1)."""
	from .desk import Desk

	context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
	page = context.new_page()
	page.set_default_timeout(30_000)
	base_url = site2.base_url
	if base_url == bench_config.base_url.rstrip("/"):  # one web server for both: reach site2 by its name
		base_url = base_url.replace(bench_config.site, bench_config.site2)
	desk = Desk(page, base_url, Path(bench_config.screenshots), prefix="site2-")
	# `bench --site <site2> serve` has no socket.io beside it: Desk says so in the console, harmlessly.
	desk.expected.append(re.compile(r"socket\.io"))
	desk.attach()
	desk.login(bench_config.admin_password)
	yield desk
	context.close()


def test_01_a_task_with_a_schedule_that_ran_on_site1(api, site2):
	task = api.insert_submitted(
		{
			"doctype": "BTU Task",
			"desc_short": f"BTU e2e transfer {TOKEN}",
			"task_group": GROUP,
			"function_string": f"{SAMPLES}.hello",
			"arguments": json.dumps({"name": "transfer"}),
			"max_task_duration": 60,
		}
	)
	schedule = api.insert(
		{
			"doctype": "BTU Task Schedule",
			"task": task["name"],
			"run_frequency": "Cron Style",
			"cron_string": "15 4 * * *",
			"cron_timezone": "Asia/Tokyo",
			"argument_overrides": json.dumps({"name": "nightly"}),
		}
	)
	STORY.update(task=task["name"], schedule=schedule["name"])
	taken = site2.names("BTU Task") | site2.names("BTU Task Schedule")
	if {task["name"], schedule["name"]} & taken:
		pytest.skip(f"{BTU_SITE2_NOTE}: {task['name']} or {schedule['name']} exists on site2 already")
	# The source's run state: a last run that site2 never had.
	api.call(
		"frappe.client.set_value",
		doctype="BTU Task Schedule",
		name=schedule["name"],
		fieldname={"last_status": "Failed", "last_log": "BTLOG-0000001"},
	)


BTU_SITE2_NOTE = "names are kept on import, and site2 holds a record of the same name"


def test_02_fixtures_move_them_whatever_the_order_of_the_files(bench, bench_config, api, site2, exchange):
	task_file, schedule_file = exchange / "btu_task.json", exchange / "btu_task_schedule.json"
	export = "frappe.core.doctype.data_import.data_import.export_json"
	bench.execute(export, doctype="BTU Task", path=str(task_file), filters=[["task_group", "=", GROUP]])
	bench.execute(
		export, doctype="BTU Task Schedule", path=str(schedule_file), filters=[["task", "=", STORY["task"]]]
	)
	assert json.loads(schedule_file.read_text())[0]["last_status"] == "Failed"  # the file carries it
	importer = "frappe.core.doctype.data_import.data_import.import_doc"
	bench.execute(importer, site=bench_config.site2, path=str(schedule_file))  # before its task
	bench.execute(importer, site=bench_config.site2, path=str(task_file))

	task = site2.get_doc("BTU Task", STORY["task"])
	assert (task["docstatus"], task["task_group"]) == (1, GROUP)
	schedule = site2.get_doc("BTU Task Schedule", STORY["schedule"])
	assert (schedule["cron_string"], schedule["cron_timezone"]) == ("15 4 * * *", "Asia/Tokyo")
	assert schedule["next_run"] and not schedule.get("last_status") and not schedule.get("last_log")
	# Deleted again on site2, for the Desk round below.
	site2.call("frappe.client.cancel", doctype="BTU Task", name=STORY["task"])
	site2.delete("BTU Task Schedule", STORY["schedule"])
	site2.delete("BTU Task", STORY["task"])


def export_in_desk(desk, route: str, name: str, folder: Path) -> Path:
	"""Select ``name`` on the list, Actions > Export, every field, CSV; the downloaded file."""
	desk.goto(f"/app/{route}")
	# Only this record: the list keeps the filters of an earlier visit (``?task=`` of another test), so
	# they are cleared first, as a user does with the filter bar's x.
	desk.page.wait_for_function("() => window.cur_list && cur_list.filter_area")
	desk.page.evaluate(
		"async (n) => { await cur_list.filter_area.clear(false);"
		" await cur_list.filter_area.add([[cur_list.doctype, 'name', '=', n]]); }",
		name,
	)
	row = desk.page.locator(f".list-row-container:has(a[data-name='{name}'])").first
	row.wait_for()
	row.locator("input.list-row-checkbox").check()
	desk.page.locator(".actions-btn-group > button:visible").first.click()
	item = desk.page.locator(".actions-btn-group .dropdown-menu .dropdown-item:visible").filter(
		has_text=re.compile(r"^\s*Export\s*$")
	)
	item.first.wait_for()
	item.first.click()
	dialog = desk.dialog()
	dialog.locator("button[data-action='select_all']").click()
	dialog.locator("select[data-fieldname='file_type']").select_option("CSV")
	desk.shot(f"export-{route}")
	with desk.page.expect_download() as download:
		dialog.locator(".btn-primary:has-text('Export')").click()
	path = folder / f"{route}-{name}.csv"
	download.value.save_as(path)
	desk.close_dialogs()
	return path


def test_03_data_export_on_site1(desk, exchange):
	STORY["task_csv"] = str(export_in_desk(desk, "btu-task", STORY["task"], exchange))
	STORY["schedule_csv"] = str(export_in_desk(desk, "btu-task-schedule", STORY["schedule"], exchange))
	header = Path(STORY["schedule_csv"]).read_text().splitlines()[0]
	assert "ID" in header and "Cron String" in header, header


def import_in_desk(desk, site2, doctype: str, csv_path: str) -> dict:
	desk.new_form("data-import")
	control = desk.field("reference_doctype")
	box = control.locator("input").first
	box.click()
	box.type(doctype, delay=30)
	offered = desk.page.locator("ul[role=listbox]:visible [role=option], .awesomplete ul:visible > li")
	try:
		wait_for(
			lambda: any(
				t.strip().splitlines()[0].strip() == doctype for t in offered.all_inner_texts() if t.strip()
			),
			20,
			0.3,
			what=f"{doctype} offered as Data Import's Document Type",
		)
	except AssertionError:
		desk.shot("FAILED-document-type")
		raise AssertionError(f"{doctype} not offered; offered: {offered.all_inner_texts()}") from None
	for item in offered.all():
		if item.inner_text().strip().splitlines()[0].strip() == doctype:
			item.click()
			break
	desk.type_into("import_type", "Insert New Records")
	if doctype == "BTU Task":
		desk.type_into("submit_after_import", "1")
	desk.save()
	name = desk.doc()["name"]
	STORY["imports"] = STORY.get("imports", "") + f" {name}"
	desk.field("import_file").locator("button:has-text('Attach')").click()
	dialog = desk.dialog()
	dialog.locator("input[type=file]").set_input_files(csv_path)
	dialog.locator(".btn-primary:has-text('Upload')").click()
	wait_for(lambda: desk.doc().get("import_file"), 30, 0.3, what="the file attached")
	primary = desk.page.locator(".page-actions .primary-action:visible")

	def start_offered() -> bool:
		label = primary.first.inner_text().strip() if primary.count() else ""
		if label == "Save":  # the attached file is saved first, as a user does
			primary.first.click()
			desk.wait_idle()
		return label == "Start Import"

	try:
		wait_for(start_offered, 60, 1.0, what="Start Import offered")
	except AssertionError:
		desk.shot(f"FAILED-start-import-{doctype.lower().replace(' ', '-')}")
		raise
	primary.first.click()
	done = wait_for(
		lambda: (row := site2.get_doc("Data Import", name))["status"] not in ("Pending", None) and row,
		120,
		1.0,
		what=f"the Data Import of {doctype}",
	)
	desk.open_form("data-import", name)
	desk.shot(f"data-import-{doctype.lower().replace(' ', '-')}")
	return done


def test_04_data_import_on_site2_keeps_names_and_leaves_run_state_behind(desk2, site2):
	task_import = import_in_desk(desk2, site2, "BTU Task", STORY["task_csv"])
	assert task_import["status"] == "Success", task_import
	schedule_import = import_in_desk(desk2, site2, "BTU Task Schedule", STORY["schedule_csv"])
	assert schedule_import["status"] == "Success", schedule_import

	task = site2.get_doc("BTU Task", STORY["task"])  # the same names as on site1
	assert (task["docstatus"], task["function_string"]) == (1, f"{SAMPLES}.hello")
	schedule = site2.get_doc("BTU Task Schedule", STORY["schedule"])
	assert (schedule["task"], schedule["cron_string"]) == (STORY["task"], "15 4 * * *")
	assert json.loads(schedule["argument_overrides"]) == {"name": "nightly"}
	assert not schedule.get("last_status") and not schedule.get("last_log")  # site1's, not carried
	assert schedule["next_run"]
	desk2.open_form("btu-task-schedule", STORY["schedule"])
	desk2.shot("imported-schedule")
	errors = desk2.take_errors()
	assert not errors, "browser console errors on site2:\n" + "\n".join(f"{e.page}: {e.text}" for e in errors)
