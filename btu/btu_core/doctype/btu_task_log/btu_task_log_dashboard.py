"""The log form's Connections panel: the runs this run started through its task's Then Run table
(their Task Logs, and their one-shots while they wait)."""

from frappe import _


def get_data() -> dict:
	return {
		"fieldname": "chained_from",
		"transactions": [{"label": _("Chained Runs"), "items": ["BTU Task Log", "BTU Task Schedule"]}],
	}
