"""Structure of the Frappe app, checked without frappe: DocType/Report/Page/Workspace JSON,
hooks, modules, patches, Desk scripts calling whitelisted methods, frappe-free modules.
"""

from __future__ import annotations

import ast
import json
import keyword
import re
import subprocess
import sys
import textwrap
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "btu"
MODULE = "BTU Core"
MODULE_DIR = APP / "btu_core"
DOCTYPE_DIR = MODULE_DIR / "doctype"

# Frappe v15 field types (frappe/model/__init__.py data_fieldtypes + no_value_fields).
FIELD_TYPES = {
	"Autocomplete",
	"Attach",
	"Attach Image",
	"Barcode",
	"Button",
	"Check",
	"Code",
	"Color",
	"Column Break",
	"Currency",
	"Data",
	"Date",
	"Datetime",
	"Duration",
	"Dynamic Link",
	"Float",
	"Fold",
	"Geolocation",
	"Heading",
	"HTML",
	"HTML Editor",
	"Icon",
	"Image",
	"Int",
	"JSON",
	"Link",
	"Long Text",
	"Markdown Editor",
	"Password",
	"Percent",
	"Phone",
	"Read Only",
	"Rating",
	"Section Break",
	"Select",
	"Signature",
	"Small Text",
	"Tab Break",
	"Table",
	"Table MultiSelect",
	"Text",
	"Text Editor",
	"Time",
}
LAYOUT_TYPES = {"Section Break", "Column Break", "Tab Break", "HTML", "Button", "Heading", "Fold", "Image"}
RESERVED_FIELDNAMES = {
	"name",
	"owner",
	"creation",
	"modified",
	"modified_by",
	"docstatus",
	"idx",
	"parent",
	"parentfield",
	"parenttype",
	"doctype",
	"_user_tags",
	"_comments",
	"_assign",
	"_liked_by",
}
CORE_DOCTYPES = {
	"User",
	"Role",
	"DocType",
	"Email Account",
	"Module Def",
	"File",
	"Print Format",
	"Letter Head",
}
FRAPPE_FREE_MODULES = [
	"btu",
	"btu.btu_core",
	"btu.btu_core.output_capture",
	"btu.btu_core.callables",
	"btu.btu_core.steps",
	"btu.btu_core.testing_smtp",
	"btu.contracts.schedule_rules",
	"btu.contracts.arguments",
	"btu.contracts.protocol",
	"btu.contracts.calendars",
	"btu.contracts.jitter",
	"btu.contracts.fire_times",
	"btu.commands",
]

# The data model of docs/architecture.md: the daemon and existing data depend on these names and types.
CONTRACT: dict[str, dict[str, str]] = {
	"BTU Task": {
		"desc_short": "Data",
		"desc_long": "Small Text",
		"function_string": "Data",
		"arguments": "Code",
		"max_task_duration": "Int",
		"queue_name": "Link",
		"run_only_as_worker": "Check",
		"is_transient": "Check",
		"repeat_log_in_stdout": "Check",
		"task_group": "Data",
		"last_runtime": "Datetime",
		"amended_from": "Link",
		"max_retries": "Int",
		"retry_delay_seconds": "Int",
		"retry_delay_cap_seconds": "Int",
		"email_each_failure": "Check",
	},
	"BTU Task Schedule": {
		"task": "Link",
		"task_description": "Data",
		"enabled": "Check",
		"queue_name": "Link",
		"run_frequency": "Select",
		"minute": "Int",
		"hour": "Int",
		"day_of_week": "Select",
		"day_of_month": "Int",
		"month": "Select",
		"cron_string": "Data",
		"cron_timezone": "Autocomplete",
		"schedule_description": "Small Text",
		"argument_overrides": "Code",
		"email_recipients": "Table",
		"redis_job_id": "Data",
		"run_at": "Datetime",
		"overlap_policy": "Select",
		"attempt": "Int",
		"retry_of": "Link",
		"delete_after_run": "Check",
		# read by the daemon (scheduler_daemon/sql.py): business calendar and jitter
		"holiday_list_doctype": "Select",
		"holiday_list": "Dynamic Link",
		"on_holiday": "Select",
		"jitter_seconds": "Int",
	},
	"BTU Task Log": {
		"task": "Link",
		"task_desc_short": "Data",
		"schedule": "Link",
		"success_fail": "Select",
		"date_time_started": "Datetime",
		"execution_time": "Float",
		"stdout": "Code",  # text, never markup: Frappe shows Code escaped and never sanitizes it (docs/security.md),
		"result_message": "Code",
		"email_note": "Small Text",
		"task_component": "Data",
		"job_id": "Data",
		"fire_time": "Datetime",
		"arguments": "Code",
		"steps": "Table",
		"attempt": "Int",
		"retry_of": "Link",
	},
	"BTU Task Log Step": {
		"step_name": "Data",
		"status": "Select",
		"duration": "Float",
		"started_at": "Datetime",
		"depth": "Int",
		"output": "Code",
	},
	"BTU Configuration": {
		"cron_time_zone": "Autocomplete",
		"path_to_btu_scheduler_uds": "Data",
		"create_in_progress_logs": "Check",
		"email_account": "Link",
		"email_subject_prefix": "Data",
		"email_include_stdout": "Check",
	},
	"BTU Queue": {"description": "Data"},
	# read by the daemon like ERPNext's Holiday List / Holiday (btu.contracts.calendars)
	"BTU Holiday List": {"holidays": "Table"},
	"BTU Holiday": {"holiday_date": "Date", "description": "Data"},
	"BTU Email Recipient": {
		"email_address": "Data",
		"email_on_start": "Check",
		"email_on_success": "Check",
		"email_on_error": "Check",
		"email_on_timeout": "Check",
	},
}


def scrub(name: str) -> str:
	return name.replace(" ", "_").replace("-", "_").lower()


def controller_class(name: str) -> str:
	return name.replace(" ", "").replace("-", "")


@lru_cache
def doctypes() -> dict[str, dict[str, Any]]:
	found = {}
	for path in sorted(DOCTYPE_DIR.glob("*/*.json")):
		data = json.loads(path.read_text(encoding="utf-8"))
		if data.get("doctype") == "DocType":
			found[data["name"]] = {**data, "_path": path}
	return found


def fields_of(doctype: str) -> dict[str, dict[str, Any]]:
	return {f["fieldname"]: f for f in doctypes()[doctype]["fields"]}


@lru_cache
def parse(path: Path) -> ast.Module:
	return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def module_path(dotted: str) -> Path | None:
	"""The source file of an app module, or None."""
	parts = dotted.split(".")
	base = ROOT.joinpath(*parts)
	for candidate in (base.with_suffix(".py"), base / "__init__.py"):
		if candidate.is_file():
			return candidate
	return None


def find_definition(dotted: str) -> ast.AST | None:
	"""The FunctionDef a dotted path (module.function or module.Class.method) names, from source."""
	parts = dotted.split(".")
	for split in range(len(parts) - 1, 0, -1):
		path = module_path(".".join(parts[:split]))
		if path is None:
			continue
		scope: list[ast.stmt] = parse(path).body
		node: ast.AST | None = None
		for name in parts[split:]:
			node = next(
				(
					n
					for n in scope
					if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == name
				),
				None,
			)
			if node is None:
				return None
			scope = getattr(node, "body", [])
		return node if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
	return None


def is_whitelisted(node: ast.AST) -> bool:
	for deco in getattr(node, "decorator_list", []):
		target = deco.func if isinstance(deco, ast.Call) else deco
		if isinstance(target, ast.Attribute) and target.attr == "whitelist":
			return True
	return False


def hooks() -> dict[str, Any]:
	values = {}
	for node in parse(APP / "hooks.py").body:
		if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
			values[node.targets[0].id] = ast.literal_eval(node.value)
	return values


def strings_in(value: Any) -> Iterator[str]:
	if isinstance(value, str):
		yield value
	elif isinstance(value, dict):
		for v in value.values():
			yield from strings_in(v)
	elif isinstance(value, (list, tuple)):
		for v in value:
			yield from strings_in(v)


def js_files() -> list[Path]:
	return sorted(APP.rglob("*.js"))


# --- DocType JSON ------------------------------------------------------------------------------


def test_every_contract_doctype_exists():
	assert set(CONTRACT) <= set(doctypes())


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_doctype_json_basics(name):
	dt = doctypes()[name]
	path: Path = dt["_path"]
	assert path.parent.name == scrub(name) and path.stem == scrub(name)
	assert dt["module"] == MODULE
	assert dt["custom"] == 0
	assert dt["fields"], "a DocType needs fields"
	assert dt.get("engine", "InnoDB") == "InnoDB"


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_field_order_matches_fields(name):
	dt = doctypes()[name]
	names = [f["fieldname"] for f in dt["fields"]]
	assert dt["field_order"] == names
	assert len(set(names)) == len(names), "duplicate fieldnames"


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_fields_are_well_formed(name):
	for field in doctypes()[name]["fields"]:
		fieldname, fieldtype = field["fieldname"], field["fieldtype"]
		assert fieldname.isidentifier() and not keyword.iskeyword(fieldname), fieldname
		assert fieldname not in RESERVED_FIELDNAMES, fieldname
		assert fieldtype in FIELD_TYPES, f"{name}.{fieldname}: unknown fieldtype {fieldtype}"
		if fieldtype not in LAYOUT_TYPES:
			assert field.get("label"), f"{name}.{fieldname} has no label"
		if fieldtype == "Select":
			options = field.get("options", "").split("\n")
			assert any(options), f"{name}.{fieldname}: Select without options"
			if field.get("default"):
				assert field["default"] in options, f"{name}.{fieldname}: default not among options"
		if fieldtype in ("Int", "Check", "Float") and "default" in field:
			float(field["default"])  # numeric defaults must parse
		if fieldtype == "Code" and field.get("options"):
			assert field["options"] in {
				"JSON",
				"Python",
				"Javascript",
				"HTML",
				"CSS",
				"Markdown",
				"SQL",
				"Jinja",
			}


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_fields_match_the_data_model_contract(name):
	fields = fields_of(name)
	for fieldname, fieldtype in CONTRACT[name].items():
		assert fieldname in fields, f"{name} lacks {fieldname}"
		assert fields[fieldname]["fieldtype"] == fieldtype, f"{name}.{fieldname}"


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_link_and_table_targets_exist(name):
	known = set(doctypes()) | CORE_DOCTYPES
	for field in doctypes()[name]["fields"]:
		if field["fieldtype"] in ("Link", "Table", "Table MultiSelect"):
			target = field.get("options")
			assert target in known, f"{name}.{field['fieldname']} -> {target!r} is not a known doctype"
			if field["fieldtype"] != "Link":
				assert doctypes()[target].get("istable") == 1, f"{target} must be a child table"


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_fetch_from_and_depends_on_name_real_fields(name):
	fields = fields_of(name)
	for field in fields.values():
		if field.get("fetch_from"):
			link, target_field = field["fetch_from"].split(".")
			assert fields[link]["fieldtype"] == "Link"
			assert target_field in fields_of(fields[link]["options"])
		for key in ("depends_on", "mandatory_depends_on", "read_only_depends_on"):
			expression = field.get(key) or ""
			for referenced in re.findall(r"doc\.(\w+)", expression):
				assert referenced in fields, (
					f"{name}.{field['fieldname']} {key} names unknown field {referenced}"
				)


def test_naming_and_kinds_follow_the_design():
	dts = doctypes()
	assert dts["BTU Task"]["autoname"] == "BTU-.#####"
	assert dts["BTU Task"]["is_submittable"] == 1
	assert fields_of("BTU Task")["amended_from"]["options"] == "BTU Task"
	assert dts["BTU Task Schedule"]["autoname"] == "TS-.######"
	assert dts["BTU Task Log"]["autoname"] == "BTLOG-.#######"
	assert dts["BTU Queue"]["autoname"] == "Prompt"
	assert dts["BTU Configuration"]["issingle"] == 1
	assert dts["BTU Email Recipient"]["istable"] == 1
	for name in ("BTU Task", "BTU Task Schedule", "BTU Task Log"):
		assert dts[name]["naming_rule"] == "Expression (old style)"
	assert fields_of("BTU Task Log")["success_fail"]["options"].split("\n") == [
		"In-Progress",
		"Success",
		"Failed",
		"Timeout",
		"Skipped",  # a run that reached its worker too late (btu.btu_core.late_runs)
	]
	frequencies = fields_of("BTU Task Schedule")["run_frequency"]["options"].split("\n")
	assert frequencies == ["Hourly", "Daily", "Weekly", "Monthly", "Yearly", "Cron Style", "Once"]
	assert (
		fields_of("BTU Task Schedule")["overlap_policy"]["default"] == "Allow"
	)  # existing rows keep running as before
	assert fields_of("BTU Task Schedule")["run_frequency"]["default"] == "Cron Style"
	assert fields_of("BTU Task")["max_task_duration"]["default"] == "600"
	assert fields_of("BTU Configuration")["cron_time_zone"]["default"] == "UTC"


def test_schedule_select_options_are_understood_by_the_cron_rules():
	from btu.contracts.schedule_rules import frequency_to_cron

	fields = fields_of("BTU Task Schedule")
	for day in filter(None, fields["day_of_week"]["options"].split("\n")):
		assert frequency_to_cron("Weekly", 0, 0, day_of_week=day).startswith("0 0 * * ")
	for number, month in enumerate(filter(None, fields["month"]["options"].split("\n")), start=1):
		assert frequency_to_cron("Yearly", 0, 0, day_of_month=1, month=month) == f"0 0 1 {number} *"


def test_task_log_is_read_only_for_users():
	perms = doctypes()["BTU Task Log"]["permissions"]
	assert perms, "somebody must be able to read logs"
	for perm in perms:
		assert not perm.get("create") and not perm.get("write") and not perm.get("submit"), perm
	assert any(p.get("delete") and p["role"] == "System Manager" for p in perms)
	assert all(
		f.get("read_only") for f in doctypes()["BTU Task Log"]["fields"] if f["fieldtype"] not in LAYOUT_TYPES
	)


def test_permissions_exist_except_for_child_tables():
	for name, dt in doctypes().items():
		if dt.get("istable"):
			assert dt["permissions"] == []
		else:
			assert any(p.get("read") for p in dt["permissions"]), name
	task_perm = doctypes()["BTU Task"]["permissions"][0]
	assert task_perm["submit"] and task_perm["cancel"] and task_perm["amend"]


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_doctype_folder_has_controller_and_scripts(name):
	folder = doctypes()[name]["_path"].parent
	assert (folder / "__init__.py").is_file()
	controller = folder / f"{scrub(name)}.py"
	classes = {n.name: n for n in parse(controller).body if isinstance(n, ast.ClassDef)}
	assert controller_class(name) in classes, f"{controller} must define {controller_class(name)}"
	bases = [ast.unparse(b) for b in classes[controller_class(name)].bases]
	assert "Document" in bases or "TextDocument" in bases  # TextDocument: btu_core/text.py
	if not doctypes()[name].get("istable"):
		script = folder / f"{scrub(name)}.js"
		assert script.is_file()
		assert f'frappe.ui.form.on("{name}"' in script.read_text()
	for list_js in folder.glob(f"{scrub(name)}_list.js"):  # not the form script of "... List" itself
		assert f'frappe.listview_settings["{name}"]' in list_js.read_text()


TEST_CASE_BASES = {"FrappeTestCase", "BTUTestCase", "DaemonTestCase"}  # the last two: btu.btu_core.testing


@pytest.mark.parametrize("test_file", sorted(DOCTYPE_DIR.glob("*/test_*.py")), ids=lambda p: p.name)
def test_doctype_test_modules_define_frappe_test_cases(test_file):
	tree = parse(test_file)
	imports = {alias.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for alias in n.names}
	assert imports & TEST_CASE_BASES
	cases = [
		n
		for n in tree.body
		if isinstance(n, ast.ClassDef) and TEST_CASE_BASES & set(map(ast.unparse, n.bases))
	]
	assert cases and any(
		m.name.startswith("test_") for c in cases for m in c.body if isinstance(m, ast.FunctionDef)
	)


def test_btu_test_cases_are_frappe_test_cases_that_leave_no_trace():
	"""BTU's own bases derive from FrappeTestCase and delete what their tests committed."""
	tree = parse(MODULE_DIR / "testing.py")
	classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
	assert [ast.unparse(b) for b in classes["BTUTestCase"].bases] == ["FrappeTestCase"]
	assert [ast.unparse(b) for b in classes["DaemonTestCase"].bases] == ["BTUTestCase"]
	teardown = next(m for m in classes["BTUTestCase"].body if getattr(m, "name", "") == "tearDown")
	assert "delete_new_records" in ast.unparse(teardown)


def test_app_tests_use_no_mocks():
	for path in sorted(APP.rglob("test_*.py")) + [MODULE_DIR / "testing.py"]:
		text = path.read_text()
		assert "unittest.mock" not in text and "mock.patch" not in text, path


def test_required_doctype_test_files_exist():
	for name in ("BTU Task", "BTU Task Schedule", "BTU Task Log"):
		assert (DOCTYPE_DIR / scrub(name) / f"test_{scrub(name)}.py").is_file()


def test_task_log_supports_log_settings_clearing():
	hook = hooks()["default_log_clearing_doctypes"]
	for doctype in hook:
		controller = doctypes()[doctype]["_path"].with_suffix(".py")
		cls = next(n for n in parse(controller).body if isinstance(n, ast.ClassDef))
		method = next(
			(m for m in cls.body if isinstance(m, ast.FunctionDef) and m.name == "clear_old_logs"), None
		)
		assert method is not None, f"{doctype} needs clear_old_logs(days)"
		assert "staticmethod" in [ast.unparse(d) for d in method.decorator_list]


# --- hooks, modules, patches -----------------------------------------------------------------------


def test_hooks_metadata():
	values = hooks()
	assert values["app_name"] == "btu"
	for key in ("app_title", "app_publisher", "app_description", "app_email", "app_license"):
		assert isinstance(values.get(key), str) and values[key], key


def test_every_dotted_path_in_hooks_is_a_function_of_the_app():
	paths = [s for s in strings_in(hooks()) if s.startswith("btu.")]
	assert "btu.install.after_install" in paths
	for dotted in paths:
		assert find_definition(dotted) is not None, (
			f"hooks.py names {dotted}, which is not a function in the app"
		)


def test_asset_paths_in_hooks_exist():
	assets = [s for s in strings_in(hooks()) if s.startswith("/assets/btu/")]
	assert assets
	for asset in assets:
		assert (APP / "public" / asset[len("/assets/btu/") :]).is_file(), asset


def test_modules_txt_matches_module_folders():
	modules = [line.strip() for line in (APP / "modules.txt").read_text().splitlines() if line.strip()]
	assert modules == [MODULE]
	for module in modules:
		folder = APP / scrub(module)
		assert (folder / "__init__.py").is_file()
	with_doctypes = {p.parent.name for p in APP.glob("*/doctype")}
	assert with_doctypes == {scrub(m) for m in modules}


def test_every_json_record_belongs_to_a_listed_module():
	modules = {line.strip() for line in (APP / "modules.txt").read_text().splitlines() if line.strip()}
	for path in MODULE_DIR.glob("*/*/*.json"):
		data = json.loads(path.read_text())
		assert data.get("module") in modules, path


def test_patches_resolve_to_execute_functions():
	entries = [
		line.strip()
		for line in (APP / "patches.txt").read_text().splitlines()
		if line.strip() and not line.strip().startswith(("#", "["))
	]
	assert entries
	for entry in entries:
		assert find_definition(entry.split()[0] + ".execute") is not None, entry


def test_bench_commands_are_exposed():
	tree = parse(APP / "commands" / "__init__.py")
	names = [n for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "commands"]
	assert names and ast.unparse(names[0].value) == "[btu_scheduler]"


# --- Desk: reports, page, workspace, scripts ---------------------------------------------------------


def records(kind: str) -> list[tuple[Path, dict[str, Any]]]:
	out = []
	for path in sorted((MODULE_DIR / kind).glob("*/*.json")):
		out.append((path, json.loads(path.read_text())))
	return out


def test_script_reports_are_complete():
	reports = {data["name"]: (path, data) for path, data in records("report")}
	assert {"Task Log Summary", "Scheduled Task Summary"} <= set(reports)
	for name, (path, data) in reports.items():
		assert data["doctype"] == "Report" and data["report_type"] == "Script Report"
		assert data["is_standard"] == "Yes" and data["module"] == MODULE
		assert path.parent.name == scrub(name)
		assert data["ref_doctype"] in doctypes()
		assert find_definition(f"btu.btu_core.report.{scrub(name)}.{scrub(name)}.execute") is not None
		assert f'frappe.query_reports["{name}"]' in path.with_suffix(".js").read_text()


def test_desk_pages_are_complete():
	pages = records("page")
	assert sorted(data["name"] for _p, data in pages) == ["btu-failed-jobs", "btu-scheduler-status"]
	for path, data in pages:
		assert (
			data["doctype"] == "Page"
			and data["standard"] == "Yes"
			and path.parent.name == scrub(data["name"])
		)
		script = path.with_suffix(".js").read_text()
		assert f'frappe.pages["{data["name"]}"].on_page_load' in script
		assert data["roles"] == [{"role": "System Manager"}]


def test_workspace_links_and_blocks_resolve():
	((path, ws),) = records("workspace")
	assert ws["doctype"] == "Workspace" and ws["name"] == "BTU" and ws["public"] == 1
	pages = {data["name"] for _p, data in records("page")}
	reports = {data["name"] for _p, data in records("report")}
	targets = {"DocType": set(doctypes()), "Page": pages, "Report": reports}
	for shortcut in ws["shortcuts"]:
		assert shortcut["link_to"] in targets[shortcut["type"]], shortcut
		if shortcut.get("stats_filter"):
			for fieldname in json.loads(shortcut["stats_filter"]):
				assert fieldname == "docstatus" or fieldname in fields_of(shortcut["link_to"])
	cards = {link["label"] for link in ws["links"] if link["type"] == "Card Break"}
	for link in ws["links"]:
		if link["type"] == "Link":
			assert link["link_to"] in targets[link["link_type"]], link
	labels = {s["label"] for s in ws["shortcuts"]}
	charts = {data["name"] for _p, data in records("dashboard_chart")}
	number_cards = {data["name"] for _p, data in records("number_card")}
	assert {row["chart_name"] for row in ws["charts"]} <= charts
	assert {row["number_card_name"] for row in ws["number_cards"]} <= number_cards
	chart_labels = {row["label"] for row in ws["charts"]}
	card_labels = {row["label"] for row in ws["number_cards"]}
	for block in json.loads(ws["content"]):
		if block["type"] == "shortcut":
			assert block["data"]["shortcut_name"] in labels
		if block["type"] == "card":
			assert block["data"]["card_name"] in cards
		if block["type"] == "chart":
			assert block["data"]["chart_name"] in chart_labels
		if block["type"] == "number_card":
			assert block["data"]["number_card_name"] in card_labels


def test_dashboard_chart_number_cards_and_their_source_are_complete():
	sources = {data["name"]: (path, data) for path, data in records("dashboard_chart_source")}
	assert set(sources) == {"BTU Runs per Day"}
	for name, (path, data) in sources.items():
		assert data["doctype"] == "Dashboard Chart Source" and data["module"] == MODULE
		assert path.parent.name == scrub(name) and (path.parent / "__init__.py").is_file()
		script = path.with_suffix(".js").read_text()
		assert f'frappe.dashboards.chart_sources["{name}"]' in script
		method = re.search(r'method: "([\w.]+)"', script).group(1)
		assert is_whitelisted(find_definition(method)), method
	for path, data in records("dashboard_chart"):
		assert data["doctype"] == "Dashboard Chart" and data["is_standard"] == 1 and data["module"] == MODULE
		assert path.parent.name == scrub(data["name"])
		assert data["chart_type"] != "Custom" or data["source"] in sources
		json.loads(data["custom_options"] or "{}")
	for path, data in records("number_card"):
		assert data["doctype"] == "Number Card" and data["is_standard"] == 1 and data["module"] == MODULE
		assert path.parent.name == scrub(data["name"]) and data["label"] == data["name"]
		assert data["document_type"] in doctypes()
		for row in json.loads(data["filters_json"]):
			assert row[0] == data["document_type"] and row[1] in fields_of(data["document_type"]), row


def whitelisted_calls() -> set[str]:
	"""Dotted methods the Desk scripts call on the server."""
	called = set()
	for path in js_files():
		text = path.read_text()
		called |= set(re.findall(r"""["'](btu\.[a-z_]+(?:\.[a-z_]+)+)["']""", text))
		called |= {
			f"btu.btu_api.endpoints.{m}" for m in re.findall(r"""btu\.api\s*\+\s*["'](\w+)["']""", text)
		}
	return called


def test_desk_scripts_call_whitelisted_functions():
	called = whitelisted_calls()
	assert "btu.btu_api.endpoints.run_task_now" in called
	assert "btu.btu_api.endpoints.preview_schedule" in called
	for dotted in sorted(called):
		if dotted == "btu.btu_api.endpoints.":
			continue
		node = find_definition(dotted)
		assert node is not None, f"JS calls {dotted}, which does not exist"
		assert is_whitelisted(node), f"JS calls {dotted}, which is not @frappe.whitelist()"


def test_api_prefix_in_shared_script_points_to_the_endpoints_module():
	assert 'btu.api = "btu.btu_api.endpoints.";' in (APP / "public" / "js" / "btu.js").read_text()


@pytest.mark.parametrize(
	"module", ["endpoints.py", "failed_jobs.py", "housekeeping.py", "chains.py", "search.py"]
)
def test_privileged_endpoints_check_permissions(module):
	tree = parse(APP / "btu_api" / module)
	for node in tree.body:
		if isinstance(node, ast.FunctionDef) and is_whitelisted(node) and node.name != "time_zones":
			source = ast.unparse(node)
			assert "require_manager()" in source or "require_doc_permission(" in source, node.name


# --- frappe-free modules -------------------------------------------------------------------------------


def imports_frappe(tree: ast.Module, top_level_only: bool = False) -> bool:
	nodes = tree.body if top_level_only else list(ast.walk(tree))
	for node in nodes:
		if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "frappe" for a in node.names):
			return True
		if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "frappe":
			return True
	return False


def test_btu_core_init_and_daemon_never_import_frappe():
	assert (MODULE_DIR / "__init__.py").read_text().strip() == ""
	for path in [APP / "__init__.py", *sorted((APP / "scheduler_daemon").rglob("*.py"))]:
		assert not imports_frappe(parse(path)), path
	for name in ("output_capture.py", "callables.py", "steps.py"):
		assert not imports_frappe(parse(MODULE_DIR / name)), name
	assert not imports_frappe(parse(APP / "commands" / "__init__.py"), top_level_only=True)


def test_frappe_free_modules_import_with_frappe_blocked():
	code = textwrap.dedent(
		f"""
        import importlib, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "frappe" or name.startswith("frappe."):
                    raise ImportError("frappe is blocked")
        sys.meta_path.insert(0, Block())
        import pkgutil, btu.scheduler_daemon
        for info in pkgutil.walk_packages(btu.scheduler_daemon.__path__, "btu.scheduler_daemon."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
        for name in {FRAPPE_FREE_MODULES!r}:
            importlib.import_module(name)
        print("ok")
        """
	)
	result = subprocess.run(
		[sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
	)
	assert result.returncode == 0, result.stderr
	assert result.stdout.strip() == "ok"
