"""The task form's Connections panel: its schedules (one-shots among them) and its Task Logs."""

from frappe import _


def get_data() -> dict:
	return {
		"fieldname": "task",
		"transactions": [{"label": _("Runs"), "items": ["BTU Task Schedule", "BTU Task Log"]}],
	}
