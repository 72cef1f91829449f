"""Messages that carry what a user or a task wrote: shown as text, never as markup.

Frappe's message dialogs (``frappe.throw`` / ``msgprint``) render their message as HTML, and
BTU's messages quote cron rules, JSON, function paths, run ids and dates as the user typed them.
"""

from __future__ import annotations

from typing import Any

import frappe
from frappe.model.document import Document


def as_html_text(text: str) -> str:
	"""``text`` for an HTML element's content: ``&``, ``<`` and ``>`` escaped (quotes need not be)."""
	return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def throw_text(message: str, exc: type[Exception] = frappe.ValidationError, title: str | None = None) -> None:
	"""``frappe.throw`` of a plain-text message: the dialog shows it literally."""
	frappe.throw(as_html_text(message), exc, title=title)


# Link: Frappe prints a link as its target's title (a task's description).
TEXT_FIELDTYPES = frozenset({"Data", "Small Text", "Text", "Long Text", "Code", "Read Only", "Link"})


class TextDocument(Document):
	"""A BTU document whose free text prints as text.

	Frappe's print view renders ``get_formatted`` as HTML and formats Data, Text and Code values
	as they are; a task's description or output may hold markup, so BTU's documents escape them
	(line breaks kept)."""

	def get_formatted(self, fieldname: str, *args: Any, **kwargs: Any) -> Any:
		value = super().get_formatted(fieldname, *args, **kwargs)
		df = self.meta.get_field(fieldname)
		if df is not None and df.fieldtype in TEXT_FIELDTYPES and isinstance(value, str):
			return as_html_text(value).replace("\n", "<br>")
		return value
