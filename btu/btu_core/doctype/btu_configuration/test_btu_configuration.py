"""BTU Configuration validation."""

from __future__ import annotations

from unittest.mock import patch

import frappe
from frappe.tests.utils import FrappeTestCase


class TestBTUConfiguration(FrappeTestCase):
	def tearDown(self):
		frappe.db.rollback()

	def save_with(self, **values):
		config = frappe.get_single("BTU Configuration")
		config.update(values)
		config.save()
		return config

	def test_unknown_time_zone_is_rejected(self):
		with self.assertRaises(frappe.ValidationError) as ctx:
			self.save_with(cron_time_zone="Atlantis/Capital")
		self.assertIn("Unknown time zone 'Atlantis/Capital'", str(ctx.exception))

	def test_empty_time_zone_becomes_utc(self):
		self.assertEqual(self.save_with(cron_time_zone="").cron_time_zone, "UTC")

	def test_socket_path_must_be_absolute_and_short(self):
		with self.assertRaises(frappe.ValidationError):
			self.save_with(path_to_btu_scheduler_uds="relative/btu.sock")
		with self.assertRaises(frappe.ValidationError) as ctx:
			self.save_with(path_to_btu_scheduler_uds="/" + "x" * 120 + ".sock")
		self.assertIn("at most 107", str(ctx.exception))

	def test_changing_the_zone_asks_the_daemon_for_a_refresh_after_commit(self):
		current = frappe.db.get_single_value("BTU Configuration", "cron_time_zone") or "UTC"
		new_zone = "Asia/Tokyo" if current != "Asia/Tokyo" else "Europe/Berlin"
		with patch("btu.contracts.protocol.refresh") as refresh:
			self.save_with(cron_time_zone=new_zone)
			refresh.assert_not_called()
			frappe.db.commit()
			refresh.assert_called_once()
			self.save_with(cron_time_zone=current)
			frappe.db.commit()
