"""BTU Task Schedule: cron rules, time zones, argument overrides, daemon notifications after commit."""

from __future__ import annotations

from unittest.mock import patch

import frappe
from frappe.tests.utils import FrappeTestCase

from btu.btu_core.doctype.btu_task.test_btu_task import make_task
from btu.contracts.protocol import DaemonReply

CREATE = "btu.contracts.protocol.create_task_schedule"
CANCEL = "btu.contracts.protocol.cancel_task_schedule"


def make_schedule(task: str, **fields):
	values = {
		"doctype": "BTU Task Schedule",
		"task": task,
		"run_frequency": "Cron Style",
		"cron_string": "*/15 * * * *",
	}
	values.update(fields)
	return frappe.get_doc(values).insert()


def reachable_reply(*_args, **_kwargs) -> DaemonReply:
	return DaemonReply(True, "queued", {}, True, 0.1)


class TestBTUTaskSchedule(FrappeTestCase):
	def setUp(self):
		frappe.flags.btu_daemon_pending = None
		frappe.flags.btu_daemon_unreachable_warned = False
		self.task = make_task(arguments='{"name": "task"}')

	def tearDown(self):
		frappe.db.rollback()
		with patch(CREATE, side_effect=reachable_reply), patch(CANCEL, side_effect=reachable_reply):
			for name in frappe.get_all("BTU Task Schedule", filters={"task": self.task.name}, pluck="name"):
				frappe.delete_doc("BTU Task Schedule", name, force=True)
			frappe.db.commit()
		frappe.flags.btu_daemon_pending = None

	# --- frequency fields -> cron string ------------------------------------------------------

	def test_frequency_fields_become_cron_strings(self):
		cases = [
			({"run_frequency": "Hourly", "minute": 5}, "5 * * * *"),
			({"run_frequency": "Daily", "minute": 30, "hour": 2}, "30 2 * * *"),
			({"run_frequency": "Weekly", "minute": 0, "hour": 8, "day_of_week": "Monday"}, "0 8 * * 1"),
			({"run_frequency": "Monthly", "minute": 0, "hour": 6, "day_of_month": 15}, "0 6 15 * *"),
			(
				{"run_frequency": "Yearly", "minute": 0, "hour": 0, "day_of_month": 1, "month": "March"},
				"0 0 1 3 *",
			),
			({"run_frequency": "Cron Style", "cron_string": "  */15   * * * * "}, "*/15 * * * *"),
		]
		for fields, expected in cases:
			with self.subTest(fields=fields):
				schedule = make_schedule(self.task.name, enabled=0, **fields)
				self.assertEqual(schedule.cron_string, expected)
				self.assertTrue(schedule.schedule_description)
				self.assertEqual(schedule.task_description, self.task.desc_short)

	def test_invalid_cron_is_rejected_with_the_reason(self):
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_schedule(self.task.name, cron_string="61 * * * *")
		self.assertIn("is invalid", str(ctx.exception))
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_schedule(self.task.name, cron_string="* * *")
		self.assertIn("has 3 fields", str(ctx.exception))

	def test_impossible_yearly_date_is_rejected(self):
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_schedule(self.task.name, run_frequency="Yearly", day_of_month=30, month="February")
		self.assertIn("February has no day 30", str(ctx.exception))

	def test_unknown_time_zone_is_rejected(self):
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_schedule(self.task.name, cron_timezone="Mars/Olympus_Mons")
		self.assertIn("Unknown time zone 'Mars/Olympus_Mons'", str(ctx.exception))

	def test_valid_and_empty_time_zones_are_accepted(self):
		self.assertEqual(
			make_schedule(self.task.name, enabled=0, cron_timezone=" Europe/Paris ").cron_timezone,
			"Europe/Paris",
		)
		self.assertEqual(make_schedule(self.task.name, enabled=0, cron_timezone="").cron_timezone, "")

	def test_invalid_override_json_is_rejected_with_position(self):
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_schedule(self.task.name, argument_overrides='{"name": }')
		self.assertIn("line 1, column", str(ctx.exception))

	def test_overrides_must_fit_the_function(self):
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_schedule(self.task.name, argument_overrides='{"colour": "red"}')
		self.assertIn("unexpected keyword argument 'colour'", str(ctx.exception))

	def test_only_submitted_tasks_may_be_scheduled(self):
		draft = make_task(submit=False)
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_schedule(draft.name)
		self.assertIn("only submitted tasks may be scheduled", str(ctx.exception))
		frappe.db.rollback()

	# --- daemon notifications --------------------------------------------------------------------

	def test_daemon_hears_of_a_new_schedule_only_after_commit(self):
		with patch(CREATE, side_effect=reachable_reply) as create:
			schedule = make_schedule(self.task.name)
			create.assert_not_called()
			frappe.db.commit()
			create.assert_called_once()
			_path, name, site = create.call_args.args
			self.assertEqual((name, site), (schedule.name, frappe.local.site))

	def test_nothing_is_sent_after_a_rollback(self):
		with (
			patch(CREATE, side_effect=reachable_reply) as create,
			patch(CANCEL, side_effect=reachable_reply) as cancel,
		):
			make_schedule(self.task.name)
			frappe.db.rollback()
			frappe.db.commit()
			create.assert_not_called()
			cancel.assert_not_called()

	def test_disabling_and_deleting_send_cancel(self):
		with patch(CREATE, side_effect=reachable_reply), patch(CANCEL, side_effect=reachable_reply) as cancel:
			schedule = make_schedule(self.task.name)
			frappe.db.commit()
			schedule.enabled = 0
			schedule.save()
			cancel.assert_not_called()
			frappe.db.commit()
			self.assertEqual(cancel.call_count, 1)
			frappe.delete_doc("BTU Task Schedule", schedule.name)
			self.assertEqual(cancel.call_count, 1)
			frappe.db.commit()
			self.assertEqual(cancel.call_count, 2)
			self.assertEqual(cancel.call_args.args[1], schedule.name)

	def test_several_changes_in_one_transaction_send_the_last_action_once(self):
		with (
			patch(CREATE, side_effect=reachable_reply) as create,
			patch(CANCEL, side_effect=reachable_reply) as cancel,
		):
			schedule = make_schedule(self.task.name)
			schedule.enabled = 0
			schedule.save()
			frappe.db.commit()
			create.assert_not_called()
			cancel.assert_called_once()

	def test_unreachable_daemon_keeps_the_save_and_warns_once(self):
		down = DaemonReply(False, "not running", {}, False, 0.2)
		with patch(CREATE, return_value=down) as create, patch("frappe.publish_realtime") as realtime:
			first = make_schedule(self.task.name)
			second = make_schedule(self.task.name)
			frappe.db.commit()
		self.assertTrue(frappe.db.exists("BTU Task Schedule", first.name))
		self.assertTrue(frappe.db.exists("BTU Task Schedule", second.name))
		self.assertEqual(create.call_count, 1)  # stops at the first unreachable reply
		warnings = [c for c in realtime.call_args_list if c.args and c.args[0] == "msgprint"]
		self.assertEqual(len(warnings), 1)
		payload = warnings[0].args[1]
		self.assertEqual(payload["indicator"], "orange")
		self.assertIn("unreachable", payload["message"])
		self.assertIn("next full refresh", payload["message"])

	def test_preview_lists_runs_in_both_zones(self):
		from btu.btu_api.endpoints import preview_schedule

		preview = preview_schedule("Daily", minute=30, hour=2, cron_timezone="America/New_York", count=10)
		self.assertEqual(preview["cron_string"], "30 2 * * *")
		self.assertEqual(len(preview["runs"]), 10)
		self.assertTrue(all(r["fire_time_schedule_zone"].endswith("02:30:00") for r in preview["runs"]))
		self.assertIn("fire_time_user_zone", preview["runs"][0])
