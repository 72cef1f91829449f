"""BTU Queue: install creates Frappe's queues; they cannot be deleted."""

from __future__ import annotations

import frappe
from frappe.tests.utils import FrappeTestCase

from btu.install import STANDARD_QUEUES, ensure_queues


class TestBTUQueue(FrappeTestCase):
	def test_standard_queues_exist_and_are_protected(self):
		ensure_queues()
		for name in STANDARD_QUEUES:
			self.assertTrue(frappe.db.exists("BTU Queue", name))
		with self.assertRaises(frappe.ValidationError):
			frappe.delete_doc("BTU Queue", "default")
		frappe.db.rollback()

	def test_queue_names_without_spaces(self):
		with self.assertRaises(frappe.ValidationError):
			frappe.get_doc({"doctype": "BTU Queue", "description": "x"}).insert(set_name="my queue")
