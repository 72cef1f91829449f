"""BTU Task Log Step: one named step of a run (child table of BTU Task Log, written by the task runner)."""

from __future__ import annotations

from frappe.model.document import Document


class BTUTaskLogStep(Document):
	pass
