"""Tasks and schedules moved between sites (bench run-tests --app btu): the fixture files Frappe's
``bench export-fixtures`` writes and ``bench migrate`` reads, and Data Import of a file Frappe's own
exporter made. Names travel, this site's run state does not, and the order of files does not matter."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile

import frappe
from frappe.core.doctype.data_import.data_import import export_json, import_doc
from frappe.core.doctype.data_import.exporter import Exporter
from frappe.utils import add_days, now_datetime

from btu.btu_core.doctype.btu_task.test_btu_task import make_task
from btu.btu_core.doctype.btu_task_schedule.test_btu_task_schedule import make_schedule
from btu.btu_core.testing import BTUTestCase

SAMPLE = "btu.btu_core.sample_tasks"
RUN_STATE = {"last_status": "Failed", "last_log": "BTLOG-0000001", "redis_job_id": "elsewhere"}


class TestSiteTransfer(BTUTestCase):
	def setUp(self):
		super().setUp()
		self.folder = tempfile.mkdtemp(prefix="btu-fixtures-")
		self.task = make_task(f"{SAMPLE}.hello", arguments='{"name": "moved"}')
		self.schedule = make_schedule(
			self.task.name,
			cron_string="15 4 * * *",
			cron_timezone="America/New_York",
			argument_overrides='{"name": "nightly"}',
		)
		frappe.db.commit()

	def tearDown(self):
		for name in os.listdir(self.folder):
			os.remove(os.path.join(self.folder, name))
		os.rmdir(self.folder)
		super().tearDown()

	def export_fixtures(self) -> tuple[str, str]:
		"""The two files ``bench export-fixtures`` writes for hooks naming this test's records."""
		task_file = os.path.join(self.folder, "btu_task.json")
		schedule_file = os.path.join(self.folder, "btu_task_schedule.json")
		export_json("BTU Task", task_file, filters=[["name", "=", self.task.name]])
		export_json("BTU Task Schedule", schedule_file, filters=[["name", "=", self.schedule.name]])
		return task_file, schedule_file

	def delete_both(self) -> None:
		frappe.delete_doc("BTU Task Schedule", self.schedule.name, force=True)
		frappe.db.set_value("BTU Task", self.task.name, "docstatus", 2, update_modified=False)
		frappe.delete_doc("BTU Task", self.task.name, force=True)
		frappe.db.commit()

	def test_fixtures_carry_names_not_run_state_and_a_schedule_may_come_first(self):
		frappe.db.set_value("BTU Task Schedule", self.schedule.name, RUN_STATE, update_modified=False)
		task_file, schedule_file = self.export_fixtures()
		with open(schedule_file) as f:
			self.assertEqual(json.load(f)[0]["last_status"], "Failed")  # the file carries it...
		self.delete_both()  # as on a site that never had them

		import_doc(schedule_file)  # before its task, as bench migrate may read them
		waiting = frappe.get_doc("BTU Task Schedule", self.schedule.name)
		self.assertEqual(waiting.task, self.task.name)
		import_doc(task_file)

		task = frappe.get_doc("BTU Task", self.task.name)
		self.assertEqual((task.docstatus, task.function_string), (1, f"{SAMPLE}.hello"))
		schedule = frappe.get_doc("BTU Task Schedule", self.schedule.name)
		self.assertEqual(
			(schedule.cron_string, schedule.cron_timezone, json.loads(schedule.argument_overrides)),
			("15 4 * * *", "America/New_York", {"name": "nightly"}),
		)
		for fieldname in RUN_STATE:  # ...but this site never ran it
			self.assertFalse(schedule.get(fieldname), fieldname)
		self.assertIsNotNone(schedule.next_run)

	def test_fixtures_imported_again_keep_this_sites_run_state(self):
		task_file, schedule_file = self.export_fixtures()
		here = {
			"last_status": "Success",
			"last_log": "BTLOG-0000002",
			"last_run": add_days(now_datetime(), -1),
		}
		frappe.db.set_value("BTU Task Schedule", self.schedule.name, here, update_modified=False)
		frappe.db.commit()
		with open(schedule_file) as f:
			rows = json.load(f)
		rows[0].update(RUN_STATE, cron_string="45 4 * * *")  # the other site's state, and a new rule
		with open(schedule_file, "w") as f:
			json.dump(rows, f)

		import_doc(schedule_file)  # what every bench migrate does
		import_doc(task_file)

		row = frappe.db.get_value(
			"BTU Task Schedule",
			self.schedule.name,
			["cron_string", "last_status", "last_log", "redis_job_id"],
			as_dict=True,
		)
		self.assertEqual(row.cron_string, "45 4 * * *")  # the rule travels
		self.assertEqual(
			(row.last_status, row.last_log, row.redis_job_id), ("Success", "BTLOG-0000002", None)
		)

	def test_a_schedule_that_does_not_fit_its_imported_task_is_refused_by_name(self):
		task_file, schedule_file = self.export_fixtures()
		self.delete_both()
		with open(schedule_file) as f:
			rows = json.load(f)
		rows[0]["argument_overrides"] = '{"no_such_argument": 1}'
		with open(schedule_file, "w") as f:
			json.dump(rows, f)
		import_doc(schedule_file)
		with self.assertRaises(frappe.ValidationError) as ctx:
			import_doc(task_file)
		self.assertIn("no_such_argument", str(ctx.exception))
		frappe.db.rollback()

	def test_a_name_taken_by_an_import_is_not_handed_out_again(self):
		current = frappe.db.get_value("Series", "BTU-", "current", order_by=None) or 0
		taken = f"BTU-{int(current) + 1:05d}"
		with open(self.export_fixtures()[0]) as f:
			row = json.load(f)[0]
		row["name"] = taken
		path = os.path.join(self.folder, "taken.json")
		with open(path, "w") as f:
			json.dump([row], f)
		import_doc(path)
		self.assertTrue(frappe.db.exists("BTU Task", taken))
		self.assertNotEqual(make_task(f"{SAMPLE}.hello", arguments='{"name": "next"}').name, taken)

	def test_data_import_of_an_exported_file_keeps_names_and_reports_a_bad_row(self):
		frappe.db.set_value("BTU Task Schedule", self.schedule.name, RUN_STATE, update_modified=False)
		fields = ["name", "task", "enabled", "run_frequency", "cron_string", "cron_timezone", "last_status"]
		exporter = Exporter(
			"BTU Task Schedule",
			export_fields={"BTU Task Schedule": fields},
			export_data=True,
			export_filters={"name": self.schedule.name},
			file_type="CSV",
		)
		rows = exporter.get_csv_array_for_export()
		header = rows[0]
		bad = list(rows[1])
		bad[header.index("ID")] = ""
		bad[header.index("Cron String")] = "61 * * * *"
		frappe.delete_doc("BTU Task Schedule", self.schedule.name, force=True)
		frappe.db.commit()

		buffer = io.StringIO()
		csv.writer(buffer).writerows([header, rows[1], bad])
		data_import = frappe.get_doc(
			{
				"doctype": "Data Import",
				"reference_doctype": "BTU Task Schedule",
				"import_type": "Insert New Records",
			}
		).insert()
		file = frappe.get_doc(
			{
				"doctype": "File",
				"file_name": f"btu-schedules-{data_import.name}.csv",
				"attached_to_doctype": "Data Import",
				"attached_to_name": data_import.name,
				"content": buffer.getvalue(),
			}
		).insert()
		try:
			data_import.reload()
			data_import.import_file = file.file_url
			data_import.save()
			data_import.start_import()
			data_import.reload()
			self.assertEqual(data_import.status, "Partial Success")
			failures = frappe.get_all(
				"Data Import Log", filters={"data_import": data_import.name, "success": 0}, pluck="messages"
			)
			self.assertEqual(len(failures), 1)
			self.assertIn("61", failures[0])  # the bad minute, named

			schedule = frappe.get_doc("BTU Task Schedule", self.schedule.name)  # the same name
			self.assertEqual((schedule.task, schedule.cron_string), (self.task.name, "15 4 * * *"))
			self.assertFalse(schedule.last_status)  # not this site's run
		finally:
			frappe.db.rollback()
			frappe.delete_doc("Data Import", data_import.name, force=True)
			frappe.delete_doc("File", file.name, force=True)
			frappe.db.commit()
