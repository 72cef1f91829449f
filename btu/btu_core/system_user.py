"""BTU's own actions (automatic retries, chained runs) are planned as Administrator: the run that
caused them was allowed, and the worker's user need not be a System Manager."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import frappe


@contextmanager
def as_administrator() -> Iterator[None]:
	user = frappe.session.user
	if user == "Administrator":
		yield
		return
	frappe.set_user("Administrator")
	try:
		yield
	finally:
		frappe.set_user(user)
