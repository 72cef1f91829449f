"""BTU Email Recipient: child table of BTU Task Schedule."""

from __future__ import annotations

from frappe.model.document import Document


class BTUEmailRecipient(Document):
	pass
