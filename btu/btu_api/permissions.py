"""Who may do what with BTU from the Desk and the API."""

from __future__ import annotations

from typing import Any

import frappe
from frappe import _

from btu.btu_core.text import as_html_text, throw_text

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
		throw_text(_("{0} {1} does not exist.").format(_(doctype), name), frappe.DoesNotExistError)
	if not frappe.has_permission(doctype, ptype, doc=name):
		message = (
			_("You are not permitted to {0} {1} {2}.").format(_(ptype), _(doctype), as_html_text(name))
			if name
			else _("You are not permitted to {0} {1}.").format(_(ptype), _(doctype))
		)
		frappe.throw(message, frappe.PermissionError, title=_("Not Permitted"))


BTU_DOCTYPES = frozenset(
	{
		"BTU Task",
		"BTU Task Schedule",
		"BTU Task Log",
		"BTU Task Log Step",
		"BTU Configuration",
		"BTU Queue",
		"BTU Email Recipient",
	}
)


@frappe.whitelist()
def get_count(doctype: str, filters: Any = None, debug: bool = False, cache: bool = False) -> int:
	"""Frappe's ``frappe.client.get_count`` (hooks: override_whitelisted_methods), refusing BTU's
	DocTypes to a user who may not read them: Frappe v15 counts any DocType for any logged-in user,
	and how many runs failed tonight is not a Website User's business. Other DocTypes go to Frappe
	unchanged."""
	from frappe.client import get_count as frappe_get_count

	if doctype in BTU_DOCTYPES and not frappe.has_permission(doctype, "read"):
		frappe.throw(
			_("You are not permitted to read {0}.").format(_(doctype)),
			frappe.PermissionError,
			title=_("Not Permitted"),
		)
	return frappe_get_count(doctype, filters=filters, debug=debug, cache=cache)
