"""Desk endpoints of chains (btu.btu_core.chains): the task form's *Then Run* link search."""

from __future__ import annotations

from typing import Any

import frappe

from btu.btu_api import search
from btu.btu_api.permissions import require_manager


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
	return search.tasks(txt, start, page_len, {"docstatus": 1}, exclude=exclude)
