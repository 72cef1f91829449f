"""BTU Holiday: one date of a BTU Holiday List (the same columns as ERPNext's Holiday)."""

from __future__ import annotations

from frappe.model.document import Document


class BTUHoliday(Document):
	pass
