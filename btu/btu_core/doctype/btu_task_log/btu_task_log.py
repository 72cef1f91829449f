"""btu_task_log controller."""

from frappe.model.document import Document


class BTUTaskLog(Document):
	pass
