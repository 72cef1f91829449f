"""Frappe notifications (the bell; an email for those whose Notification Settings ask) to every
enabled System Manager of the site: BTU's alerts and a schedule paused after failures."""

from __future__ import annotations

import frappe


def system_manager_emails() -> list[str]:
	users = frappe.get_all(
		"Has Role", filters={"role": "System Manager", "parenttype": "User"}, pluck="parent", distinct=True
	)
	return [
		e for e in frappe.get_all("User", filters={"name": ("in", users), "enabled": 1}, pluck="email") if e
	]


def notify_system_managers(subject: str, content: str, doctype: str, name: str) -> None:
	"""An Alert notification about ``doctype`` ``name``; ``subject`` and ``content`` are escaped text."""
	from frappe.desk.doctype.notification_log.notification_log import enqueue_create_notification

	emails = system_manager_emails()
	if emails:
		enqueue_create_notification(
			emails,
			{
				"type": "Alert",
				"document_type": doctype,
				"document_name": name,
				"subject": subject,
				"email_content": content,
			},
		)
