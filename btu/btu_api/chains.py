"""Desk endpoints of chains (btu.btu_core.chains): the task form's *Then Run* link search."""

from __future__ import annotations

from typing import Any

import frappe
from frappe.utils import cint

from btu.btu_api.permissions import require_manager
from btu.btu_core.text import as_html_text

MAX_ROWS = 50


@frappe.whitelist()
def next_task_query(
	doctype: str, txt: str, searchfield: str, start: int, page_len: int, filters: Any = None
) -> list[tuple[str, str, str]]:
	"""Submitted tasks for a Then Run row's Next Task (not the task itself), as Frappe's link search
	wants them: (name, title, function). Frappe's link dropdown renders a title as markup, and a task's
	description may hold markup, so the title comes escaped (shown as the text it is)."""
	require_manager()
	filters = frappe.parse_json(filters) if isinstance(filters, str) else (filters or {})
	exclude = (filters or {}).get("exclude") or ""
	like = f"%{txt or ''}%"
	rows = frappe.get_all(
		"BTU Task",
		filters=[["docstatus", "=", 1], ["name", "!=", exclude]],
		or_filters=[["name", "like", like], ["desc_short", "like", like], ["function_string", "like", like]],
		fields=["name", "desc_short", "function_string"],
		order_by="modified desc",
		limit_start=cint(start),
		limit_page_length=min(cint(page_len) or 20, MAX_ROWS),
		as_list=True,
	)
	return [
		(name, as_html_text(title or name), as_html_text(function or "")) for name, title, function in rows
	]
