"""Messages that carry what a user or a task wrote: shown as text, never as markup.

Frappe's message dialogs (``frappe.throw`` / ``msgprint``) render their message as HTML, and
BTU's messages quote cron rules, JSON, function paths, run ids and dates as the user typed them.
"""

from __future__ import annotations

import frappe


def as_html_text(text: str) -> str:
	"""``text`` for an HTML element's content: ``&``, ``<`` and ``>`` escaped (quotes need not be)."""
	return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def throw_text(message: str, exc: type[Exception] = frappe.ValidationError, title: str | None = None) -> None:
	"""``frappe.throw`` of a plain-text message: the dialog shows it literally."""
	frappe.throw(as_html_text(message), exc, title=title)
