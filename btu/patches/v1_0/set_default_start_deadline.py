"""Give BTU Configuration's new Default Start Deadline its default on sites that existed before it.

A Single's new field has no row in tabSingles on an existing site, and reading it gives 0 (no
deadline); new sites get the field's default (3600 s, the daemon's misfire grace). This patch writes
that default where no value is stored yet, so an upgraded site behaves as a new one; a value an
administrator set is kept.
"""

from __future__ import annotations

import frappe

DEFAULT_SECONDS = 3600


def execute() -> None:
	stored = frappe.db.sql(
		"SELECT 1 FROM `tabSingles` WHERE doctype = 'BTU Configuration' AND field = 'default_start_deadline'"
	)
	if stored:
		return
	frappe.db.set_single_value("BTU Configuration", "default_start_deadline", DEFAULT_SECONDS)
