"""BTU Configuration validation, and the refresh a real daemon is asked for when the zone changes."""

from __future__ import annotations

import frappe

from btu.btu_core.testing import BTUTestCase, DaemonTestCase, wait_for


class TestBTUConfiguration(BTUTestCase):
	def tearDown(self):
		frappe.db.rollback()
		super().tearDown()

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


class TestConfigurationReachesTheDaemon(DaemonTestCase):
	def test_changing_the_zone_asks_the_daemon_for_a_refresh_after_commit(self):
		current = frappe.db.get_single_value("BTU Configuration", "cron_time_zone") or "UTC"
		new_zone = "Asia/Tokyo" if current != "Asia/Tokyo" else "Europe/Berlin"
		refreshes = self.daemon.status()["refresh"]["number"]
		mark = self.daemon.mark()
		config = frappe.get_single("BTU Configuration")
		try:
			config.cron_time_zone = new_zone
			config.save()
			self.assertEqual(self.daemon.status()["refresh"]["number"], refreshes)  # not before the commit
			frappe.db.commit()
			wait_for(lambda: self.daemon.status()["refresh"]["number"] > refreshes, what="a refresh")
			self.assertIn(f"event=refresh_requested site={frappe.local.site}", self.daemon.output(mark))
		finally:
			config = frappe.get_single("BTU Configuration")
			config.cron_time_zone = current
			config.save()
			frappe.db.commit()
