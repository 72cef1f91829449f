"""BTU Queue: install creates Frappe's queues; they cannot be deleted."""

from __future__ import annotations

import frappe
from frappe.tests.utils import FrappeTestCase

from btu.contracts.queues import STANDARD_QUEUES
from btu.install import ensure_queues


class TestBTUQueue(FrappeTestCase):
	def test_standard_queues_exist_and_are_protected(self):
		ensure_queues()
		for name in STANDARD_QUEUES:
			self.assertTrue(frappe.db.exists("BTU Queue", name))
		with self.assertRaises(frappe.ValidationError) as ctx:
			frappe.delete_doc("BTU Queue", "short")
		self.assertIn("standard queues", str(ctx.exception))
		frappe.db.rollback()

	def test_queue_names_without_spaces(self):
		with self.assertRaises(frappe.ValidationError) as ctx:
			frappe.get_doc({"doctype": "BTU Queue", "description": "x"}).insert(set_name="my queue")
		self.assertIn("must not contain spaces", str(ctx.exception))
		frappe.db.rollback()
