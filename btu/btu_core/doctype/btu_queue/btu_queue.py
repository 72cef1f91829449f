"""BTU Queue: the name of an RQ queue that BTU tasks may run in."""

from __future__ import annotations

import frappe
from frappe import _

from btu.btu_core.text import TextDocument
from btu.contracts.queues import STANDARD_QUEUES


class BTUQueue(TextDocument):
	def validate(self) -> None:
		if not self.name or any(ch.isspace() for ch in self.name):
			frappe.throw(_("A queue name must not contain spaces."), title=_("Invalid Queue Name"))

	def on_trash(self) -> None:
		if self.name in STANDARD_QUEUES:
			frappe.throw(
				_("Queue {0} is one of Frappe's standard queues and cannot be deleted.").format(self.name)
			)
