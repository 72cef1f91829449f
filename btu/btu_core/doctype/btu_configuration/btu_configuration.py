"""btu_configuration controller."""

from frappe.model.document import Document


class BTUConfiguration(Document):
	pass
