"""btu_task_schedule controller."""

from frappe.model.document import Document


class BTUTaskSchedule(Document):
	pass
