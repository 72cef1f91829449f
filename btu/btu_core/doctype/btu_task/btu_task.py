"""btu_task controller."""

from frappe.model.document import Document


class BTUTask(Document):
	pass
