"""The schedules that follow a BTU Holiday List, on its form's Connections."""

from __future__ import annotations

from frappe import _


def get_data() -> dict:
	return {
		"fieldname": "holiday_list",
		"transactions": [{"label": _("Schedules"), "items": ["BTU Task Schedule"]}],
	}
