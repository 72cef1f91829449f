"""Tasks and schedules moved between sites: Data Import and Export, and an app's fixtures.

Both carry a record under its name, and both save it through the usual validation (fixtures skip
only the link checks). Two things differ from a save in Desk:

* **This site's run state is not carried.** A task's last runtime and a schedule's last run, its
  status, its log and the daemon's job id describe runs on the site they came from. While
  importing, these fields keep the values of this site's record of the same name, or are empty.
  Fixtures delete that record before inserting the new one, so its values are read first
  (``before_import``).
* **A schedule may arrive before its task.** ``bench migrate`` imports fixture files in no set
  order. Such a schedule is saved unchecked (the daemon reports it as naming a task that does not
  exist, and plans nothing); when its task is imported, the task's schedules are checked against
  it and handed to the daemon.
"""

from __future__ import annotations

from typing import Any

import frappe

TASK_SITE_FIELDS = ("last_runtime",)
SCHEDULE_SITE_FIELDS = ("last_run", "last_status", "last_log", "redis_job_id", "paused_reason")

_KEPT_FLAG = "btu_site_state"


def importing() -> bool:
	"""True while Data Import or a fixture import is saving documents."""
	return bool(frappe.flags.in_import)


def remember_site_state(doc: Any, fieldnames: tuple[str, ...]) -> None:
	"""Read this site's run state of ``doc``'s name before an import replaces the record."""
	row = frappe.db.get_value(doc.doctype, doc.name, list(fieldnames), as_dict=True) if doc.name else None
	doc.flags.setdefault(_KEPT_FLAG, dict(row or {}))


def keep_site_state(doc: Any, fieldnames: tuple[str, ...]) -> None:
	"""While importing: ``fieldnames`` hold this site's values for ``doc``'s name (empty when new)."""
	if not importing():
		return
	if _KEPT_FLAG not in doc.flags:
		remember_site_state(doc, fieldnames)
	kept = doc.flags.get(_KEPT_FLAG) or {}
	for fieldname in fieldnames:
		doc.set(fieldname, kept.get(fieldname))


def task_not_imported_yet(task_name: str) -> bool:
	"""While importing, a schedule's task that is not on this site (yet)."""
	return importing() and not frappe.db.exists("BTU Task", task_name)


def check_schedules_of(task: Any) -> None:
	"""An imported task: its schedules (some may have arrived first) are checked and planned."""
	from btu.btu_api.daemon_link import notify_after_commit

	if not importing():
		return
	for name in frappe.get_all("BTU Task Schedule", filters={"task": task.name}, pluck="name"):
		schedule = frappe.get_doc("BTU Task Schedule", name)
		schedule.validate_argument_overrides(task)
		if schedule.task_description != task.desc_short:
			schedule.db_set("task_description", task.desc_short, update_modified=False)
		if schedule.enabled:
			notify_after_commit("create", name)
