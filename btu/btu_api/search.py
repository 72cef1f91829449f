"""Desk's link search for BTU Task (``standard_queries`` in hooks.py): every Link to a task, in any
form or list filter, finds tasks by name, description or function, with the description escaped.

Frappe v15's link dropdown renders the title it is given as markup, and BTU Task shows its
description as the title; a description may hold markup (docs/security.md), so it is handed over as
the text it is.
"""

from __future__ import annotations

from typing import Any

import frappe
from frappe.utils import cint

from btu.btu_api.permissions import require_doc_permission
from btu.btu_core.text import as_html_text

MAX_ROWS = 50


def tasks(txt: str, start: Any, page_len: Any, filters: Any = None, exclude: str = "") -> list[tuple]:
	"""(name, title, function) of the tasks matching ``txt`` and ``filters``, titles escaped."""
	filters = frappe.parse_json(filters) if isinstance(filters, str) else (filters or {})
	conditions = (
		[[key, "=", value] for key, value in filters.items()] if isinstance(filters, dict) else filters
	)
	conditions = [c for c in conditions if not (isinstance(c, list) and c[:1] == ["exclude"])]
	if exclude:
		conditions.append(["name", "!=", exclude])
	like = f"%{txt or ''}%"
	rows = frappe.get_list(
		"BTU Task",
		filters=conditions,
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


@frappe.whitelist()
def task_query(
	doctype: str, txt: str, searchfield: str, start: int, page_len: int, filters: Any = None
) -> list[tuple]:
	"""Frappe's link search signature; the reader's own permissions apply (``frappe.get_list``)."""
	require_doc_permission("BTU Task", None, "read")
	return tasks(txt, start, page_len, filters)
