"""BTU Task Chain: a row of a BTU Task's *Then Run* table (btu.btu_core.chains runs and checks them)."""

from __future__ import annotations

from frappe.model.document import Document


class BTUTaskChain(Document):
	pass
