"""Names of tasks and schedules are never reused while a Task Log still carries them.

Frappe winds a naming series back when the newest document of a doctype is deleted, so the
next one would take the deleted one's name, and its logs (which keep that name) would seem to
be the new one's. BTU skips such names.
"""

from __future__ import annotations

import frappe
from frappe.model.naming import make_autoname


def name_not_in_logs(series: str, log_field: str) -> str:
	"""The next name of ``series`` that no BTU Task Log's ``log_field`` holds."""
	while True:
		name = make_autoname(series)
		if not frappe.db.exists("BTU Task Log", {log_field: name}):
			return name
