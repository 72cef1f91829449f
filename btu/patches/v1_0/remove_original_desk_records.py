"""Upgrade from the original BTU: remove the Desk records BTU no longer ships.

The original's reports "BTU Scheduled Task Summary", "BTU Task Log Summary" and "Task Log
Averages" (query reports; Averages reads ``task_type``, a column only version 13 had), its page
``btu-redis-queue`` and its workspace "Automated Tasks" stay in the database after the app's
files are gone; opening them fails or shows the old layout. BTU's own are the reports
"Scheduled Task Summary" and "Task Log Summary", the page ``btu-scheduler-status`` and the
workspace "BTU". Only standard records of the original's module (BTU_Core) are removed, so a
copy someone made under another module or as a non-standard report stays. The original's
Module Defs (btu_core, btu_api) go too when nothing refers to them any more.
"""

from __future__ import annotations

import frappe

ORIGINAL_MODULES = ("btu_core", "btu_api")
RECORDS = (
	("Report", "BTU Scheduled Task Summary"),
	("Report", "BTU Task Log Summary"),
	("Report", "Task Log Averages"),
	("Page", "btu-redis-queue"),
	("Workspace", "Automated Tasks"),
)
REPLACEMENTS = {
	"BTU Scheduled Task Summary": "report Scheduled Task Summary",
	"BTU Task Log Summary": "report Task Log Summary",
	"Task Log Averages": "report Task Log Summary",
	"btu-redis-queue": "page btu-scheduler-status",
	"Automated Tasks": "workspace BTU",
}


def is_original(doctype: str, name: str) -> bool:
	record = frappe.db.get_value(doctype, name, ["module"], as_dict=True)
	if not record or (record.module or "").lower().replace(" ", "_") not in ORIGINAL_MODULES:
		return False
	if doctype == "Report":
		return frappe.db.get_value("Report", name, "is_standard") == "Yes"
	return True


def execute() -> None:
	for doctype, name in RECORDS:
		if not is_original(doctype, name):
			continue
		frappe.delete_doc(doctype, name, force=True, ignore_permissions=True, delete_permanently=True)
		say(f"{doctype} {name!r} of the original removed (BTU has the {REPLACEMENTS[name]})")
	for module in ORIGINAL_MODULES:
		if (
			not frappe.db.exists("Module Def", module)
			or frappe.db.get_value("Module Def", module, "app_name") != "btu"
		):
			continue
		users = [
			doctype
			for doctype in (
				"DocType",
				"Report",
				"Page",
				"Workspace",
				"Print Format",
				"Dashboard Chart",
				"Web Form",
			)
			if frappe.db.exists(doctype, {"module": module})
		]
		if users:
			say(f"Module Def {module!r} of the original kept: {', '.join(users)} records still use it")
			continue
		# Not delete_doc: Module Def's on_trash rewrites the app's modules.txt in developer mode.
		frappe.db.delete("Module Def", {"name": module})
		say(f"Module Def {module!r} of the original removed")


def say(line: str) -> None:
	print(f"BTU upgrade: {line}")
