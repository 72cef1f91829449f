"""Who may do what with BTU from the Desk and the API."""

from __future__ import annotations

import frappe
from frappe import _

MANAGER_ROLE = "System Manager"


def is_manager(user: str | None = None) -> bool:
	"""Running tasks executes server code, so it is reserved to System Managers."""
	return MANAGER_ROLE in frappe.get_roles(user or frappe.session.user)


def has_app_permission() -> bool:
	"""Apps screen: show BTU to System Managers only."""
	return is_manager()


def require_manager() -> None:
	if not is_manager():
		frappe.throw(
			_("Only a {0} may do this.").format(_(MANAGER_ROLE)),
			frappe.PermissionError,
			title=_("Not Permitted"),
		)


def require_doc_permission(doctype: str, name: str | None = None, ptype: str = "read") -> None:
	"""Throw frappe.PermissionError unless the session user has ``ptype`` on the doctype/document."""
	if name and not frappe.db.exists(doctype, name):
		frappe.throw(_("{0} {1} does not exist.").format(_(doctype), name), frappe.DoesNotExistError)
	if not frappe.has_permission(doctype, ptype, doc=name):
		frappe.throw(
			_("You are not permitted to {0} {1} {2}.").format(_(ptype), _(doctype), name or ""),
			frappe.PermissionError,
			title=_("Not Permitted"),
		)
