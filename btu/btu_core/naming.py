"""Names of tasks and schedules are never reused, nor taken twice.

Frappe winds a naming series back when the newest document of a doctype is deleted, so the
next one would take the deleted one's name, and its logs (which keep that name) would seem to
be the new one's. And a record imported under its name (Data Import with an ID column, an app's
fixtures) is not counted by the series, which would later hand out that name again. BTU skips
both kinds of names.
"""

from __future__ import annotations

import frappe
from frappe.model.naming import make_autoname


def unused_name(series: str, doctype: str, log_field: str) -> str:
	"""The next name of ``series`` that no ``doctype`` record and no BTU Task Log's ``log_field`` holds."""
	while True:
		name = make_autoname(series)
		if not frappe.db.exists(doctype, name) and not frappe.db.exists("BTU Task Log", {log_field: name}):
			return name
