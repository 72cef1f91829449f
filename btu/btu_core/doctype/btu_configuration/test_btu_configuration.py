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

	def test_empty_time_zone_becomes_the_sites_own(self):
		site_zone = frappe.db.get_single_value("System Settings", "time_zone") or "UTC"
		self.assertEqual(self.save_with(cron_time_zone="").cron_time_zone, site_zone)

	def test_a_new_install_takes_the_sites_zone_and_an_upgrade_keeps_its_own(self):
		from btu.install import ensure_configuration

		site_zone = frappe.db.get_single_value("System Settings", "time_zone")
		before = frappe.db.get_single_value("BTU Configuration", "cron_time_zone")
		try:
			frappe.db.set_single_value("BTU Configuration", "cron_time_zone", "")
			ensure_configuration()  # as after_install / the setup wizard's hook
			self.assertEqual(frappe.db.get_single_value("BTU Configuration", "cron_time_zone"), site_zone)
			frappe.db.set_single_value("BTU Configuration", "cron_time_zone", "Asia/Tokyo")
			ensure_configuration()  # as after_migrate: what the site had stays
			self.assertEqual(frappe.db.get_single_value("BTU Configuration", "cron_time_zone"), "Asia/Tokyo")
		finally:
			frappe.db.set_single_value("BTU Configuration", "cron_time_zone", before)
			frappe.db.commit()

	def test_socket_path_must_be_absolute_and_short(self):
		with self.assertRaises(frappe.ValidationError):
			self.save_with(path_to_btu_scheduler_uds="relative/btu.sock")
		with self.assertRaises(frappe.ValidationError) as ctx:
			self.save_with(path_to_btu_scheduler_uds="/" + "x" * 120 + ".sock")
		self.assertIn("at most 107", str(ctx.exception))

	def test_only_the_server_sets_the_socket_path(self):
		"""A System Manager must not point the Desk at another Unix socket of the server."""
		with self.assertRaises(frappe.ValidationError) as ctx:
			self.save_with(path_to_btu_scheduler_uds="/var/run/docker.sock")
		self.assertIn("bench set-config btu_socket_path", str(ctx.exception))
		self.assertEqual(self.save_with(path_to_btu_scheduler_uds="").path_to_btu_scheduler_uds, "")


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


class TestHousekeeping(BTUTestCase):
	"""Log retention through Log Settings, and Send test email over a real SMTP conversation."""

	def setUp(self):
		super().setUp()
		from btu.btu_core.doctype.btu_configuration.btu_configuration import log_retention_days

		self.retention = log_retention_days()
		self.saved = {
			field: frappe.db.get_single_value("BTU Configuration", field)
			for field in ("email_account", "email_subject_prefix", "log_retention_days")
		}
		self.accounts: list[str] = []
		self.muted = frappe.flags.mute_emails

	def tearDown(self):
		frappe.db.rollback()
		from btu.btu_core.doctype.btu_configuration.btu_configuration import set_log_retention_days

		if self.retention is not None:
			set_log_retention_days(self.retention)
		for field, value in self.saved.items():
			frappe.db.set_single_value("BTU Configuration", field, value)
		for name in frappe.get_all(
			"Email Queue", filters={"reference_doctype": "BTU Configuration"}, pluck="name"
		):
			frappe.delete_doc("Email Queue", name, force=True, ignore_permissions=True)
		for account in self.accounts:
			frappe.delete_doc("Email Account", account, force=True, ignore_permissions=True)
		frappe.flags.testing_email = False
		frappe.flags.mute_emails = self.muted
		frappe.db.commit()
		super().tearDown()

	# --- retention ----------------------------------------------------------------------------------

	def test_retention_is_log_settings_row_for_task_logs(self):
		from btu.btu_core.doctype.btu_configuration.btu_configuration import log_retention_days

		config = frappe.get_single("BTU Configuration")
		config.log_retention_days = 45
		config.save()
		self.assertEqual(log_retention_days(), 45)
		rows = frappe.get_single("Log Settings").logs_to_clear
		self.assertEqual([r.days for r in rows if r.ref_doctype == "BTU Task Log"], [45])

		frappe.db.set_value(
			"Logs To Clear", {"parent": "Log Settings", "ref_doctype": "BTU Task Log"}, "days", 20
		)
		shown = frappe.get_doc("BTU Configuration")
		shown.run_method("onload")
		self.assertEqual(shown.log_retention_days, 20)  # the form shows what Log Settings says
		stale = frappe.get_single("BTU Configuration")  # holds 45
		stale.email_subject_prefix = "[BTU test]"
		stale.save()
		self.assertEqual(log_retention_days(), 20)  # saving something else never undoes Log Settings

	def test_retention_is_refused_outside_its_range(self):
		config = frappe.get_single("BTU Configuration")
		config.log_retention_days = 40000
		with self.assertRaises(frappe.ValidationError) as ctx:
			config.save()
		self.assertIn(
			"Keep Task Logs must be from 0 (keep every log) to 36500 days, got 40000.", str(ctx.exception)
		)

	def test_zero_days_keeps_every_log(self):
		from btu.btu_core.doctype.btu_task.test_btu_task import make_task
		from btu.btu_core.doctype.btu_task_log.btu_task_log import BTUTaskLog
		from btu.btu_core.task_runner import execute_task

		log = execute_task(make_task().name).log
		frappe.db.set_value("BTU Task Log", log, "modified", "2000-01-01 00:00:00", update_modified=False)
		BTUTaskLog.clear_old_logs(days=0)
		self.assertTrue(frappe.db.exists("BTU Task Log", log))

	# --- test email -------------------------------------------------------------------------------------

	def smtp_account(self, port: int) -> str:
		token = frappe.generate_hash(length=6)
		account = frappe.get_doc(
			{
				"doctype": "Email Account",
				"email_account_name": f"BTU SMTP test {token}",
				"email_id": f"btu-sender-{token}@example.com",  # Frappe caches the account per address
				"enable_outgoing": 1,
				"smtp_server": "127.0.0.1",
				"smtp_port": port,
				"no_smtp_authentication": 1,
			}
		).insert(ignore_permissions=True)
		self.accounts.append(account.name)
		frappe.db.set_single_value("BTU Configuration", "email_account", account.name)
		frappe.db.set_single_value("BTU Configuration", "email_subject_prefix", "[BTU]")
		frappe.db.commit()
		return account.name

	def test_send_test_email_talks_smtp_through_btus_account(self):
		from btu.btu_api.housekeeping import send_test_email
		from btu.btu_core.testing_smtp import SMTPSink

		frappe.flags.testing_email, frappe.flags.mute_emails = (
			True,
			False,
		)  # run-tests sends nothing otherwise
		with SMTPSink() as sink:
			account = self.smtp_account(sink.port)
			reply = send_test_email("ops@example.com")
			wait_for(lambda: sink.messages or not reply["sent"], 10, "the SMTP server to receive the email")
		self.assertTrue(reply["sent"], reply)
		self.assertEqual(reply["account"], account)
		self.assertEqual(reply["sender"], frappe.db.get_value("Email Account", account, "email_id"))
		(received,) = sink.messages
		self.assertEqual(received.recipients, ["ops@example.com"])
		self.assertEqual(received.subject, f"[BTU] Test email from BTU on {frappe.local.site}")
		self.assertEqual(frappe.db.get_value("Email Queue", reply["email_queue"], "status"), "Sent")

	def test_a_test_email_the_server_refuses_says_why_and_is_not_sent_later(self):
		from btu.btu_api.housekeeping import send_test_email
		from btu.btu_core.testing_smtp import SMTPSink

		frappe.flags.testing_email, frappe.flags.mute_emails = True, False
		with SMTPSink() as sink:
			port = sink.port
		self.smtp_account(port)  # nothing listens there any more
		reply = send_test_email("ops@example.com")
		self.assertFalse(reply["sent"], reply)
		self.assertIn("Invalid Outgoing Mail Server or Port: [Errno 111] Connection refused", reply["error"])
		self.assertEqual(frappe.db.get_value("Email Queue", reply["email_queue"], "status"), "Error")

	def test_a_bad_recipient_is_refused(self):
		from btu.btu_api.housekeeping import send_test_email

		with self.assertRaises(frappe.ValidationError) as ctx:
			send_test_email("not an address")
		self.assertIn("'not an address' is not an email address.", str(ctx.exception))
