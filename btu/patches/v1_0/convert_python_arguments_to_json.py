"""The original BTU stored task arguments as Python dict literals; BTU now reads JSON only.

Rewrites every value that is not valid JSON but is a Python literal dict (read with
ast.literal_eval, never eval) as JSON. Values that are neither are left alone and
reported, so their owner can fix them in the form (saving shows where the error is).
"""

from __future__ import annotations

import ast
import json

import frappe

FIELDS = (("BTU Task", "arguments"), ("BTU Task Schedule", "argument_overrides"))


def python_literal_to_json(text: str) -> str | None:
	"""JSON for a Python dict literal; None when ``text`` is already JSON, empty, or not a dict literal."""
	if not text or not text.strip():
		return None
	try:
		json.loads(text)
		return None
	except ValueError:
		pass
	try:
		value = ast.literal_eval(text.strip())
	except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
		return None
	if not isinstance(value, dict):
		return None
	try:
		return json.dumps(value, indent=1, default=str)
	except (TypeError, ValueError):
		return None


def execute() -> None:
	for doctype, fieldname in FIELDS:
		if not frappe.db.has_column(doctype, fieldname):
			continue
		for row in frappe.get_all(doctype, fields=["name", fieldname], filters={fieldname: ("is", "set")}):
			converted = python_literal_to_json(row[fieldname])
			if converted is not None:
				frappe.db.set_value(doctype, row.name, fieldname, converted, update_modified=False)
			else:
				try:
					json.loads(row[fieldname])
				except ValueError:
					frappe.log_error(
						title=f"BTU: {doctype} {row.name} {fieldname} is not JSON",
						message=row[fieldname],
					)
