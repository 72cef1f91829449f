"""BTU Task Log: one run of a BTU Task (written by btu.btu_core.task_runner, read-only for users)."""

from __future__ import annotations

import frappe
from frappe.model.document import Document
from frappe.query_builder import Interval
from frappe.query_builder.functions import Now


class BTUTaskLog(Document):
	@staticmethod
	def clear_old_logs(days: int = 90) -> None:
		"""Log Settings hook: delete logs older than ``days``."""
		table = frappe.qb.DocType("BTU Task Log")
		frappe.db.delete(table, filters=(table.modified < (Now() - Interval(days=days))))
