"""What a site's System Manager can make BTU run: only functions an app declares (docs/security.md).

Every path that names a function is tried with the escapes a hostile administrator would type,
with the server's opt-in ``btu_allow_any_app_function`` off and on: the task form, a schedule's
save, Run now on this server, ``btu.api.run_function``, and the runner at execution (a task saved
while allowed, no longer allowed, fails with a Task Log saying why and what would allow it)."""

from __future__ import annotations

from contextlib import contextmanager

import frappe

from btu.btu_core.doctype.btu_task.test_btu_task import make_task
from btu.btu_core.doctype.btu_task_schedule.test_btu_task_schedule import QUIET_CRON, make_schedule
from btu.btu_core.testing import BTUTestCase

# (path, what the refusal says whatever the opt-in says)
ALWAYS_REFUSED = [
	("frappe.os.system", "reaches 'system' through frappe.os"),
	("frappe.db.sql", "reaches 'sql' through frappe.db"),
	("btu.btu_core.task_runner.frappe.os.system", "reaches 'system' through btu.btu_core.task_runner.frappe"),
	("frappe.utils.os.popen", "reaches 'popen' through frappe.utils.os"),
	("frappe.os", "is a module, not a function"),
	("frappe.utils.cint.__globals__", "names '__globals__'"),
	("frappe._dict", "names '_dict'"),
	("frappe.utils.json.loads", "reaches 'loads' through frappe.utils.json"),
	("frappe.utils.cint", "is defined in 'frappe.utils.data'"),  # imported into frappe.utils
	("os.system", "'os' is not an installed app"),
	("builtins.eval", "'builtins' is not an installed app"),
	("subprocess.check_output", "'subprocess' is not an installed app"),
]
# Functions defined in an installed app's own module: refused unless the server opts in.
REFUSED_UNLESS_OPTED_IN = ["frappe.utils.execute_in_shell", "frappe.get_attr", "frappe.utils.data.cint"]


@contextmanager
def opt_in(on: bool):
	"""The server's opt-in, as site_config.json would carry it, for this process only."""
	before = frappe.local.conf.get("btu_allow_any_app_function")
	frappe.local.conf["btu_allow_any_app_function"] = 1 if on else 0
	try:
		yield
	finally:
		if before is None:
			frappe.local.conf.pop("btu_allow_any_app_function", None)
		else:
			frappe.local.conf["btu_allow_any_app_function"] = before


class TestRunnableFunctions(BTUTestCase):
	def refused_on_save(self, path: str) -> str:
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_task(path, submit=False)
		return str(ctx.exception)

	def test_escapes_are_refused_on_the_task_form_with_the_opt_in_off_and_on(self):
		for on in (False, True):
			with opt_in(on):
				for path, fragment in ALWAYS_REFUSED:
					with self.subTest(path=path, opt_in=on):
						self.assertIn(fragment, self.refused_on_save(path))

	def test_undeclared_app_functions_need_the_servers_opt_in(self):
		with opt_in(False):
			for path in REFUSED_UNLESS_OPTED_IN:
				with self.subTest(path=path):
					message = self.refused_on_save(path)
					self.assertIn("is not declared runnable", message)
					self.assertIn("btu_runnable_functions", message)
					self.assertIn("bench set-config -g btu_allow_any_app_function 1", message)
		with opt_in(True):
			task = make_task("frappe.utils.data.cint", submit=False)
			self.assertEqual(task.function_string, "frappe.utils.data.cint")

	def test_declared_functions_run(self):
		from btu.btu_core.task_runner import execute_task

		task = make_task("btu.btu_core.sample_tasks.hello", arguments='{"name": "declared"}')
		outcome = execute_task(task.name)
		self.assertEqual(outcome.status, "Success", outcome.result_message)
		self.assertIn("Hello, declared!", outcome.stdout)

	def smuggle(self, task_name: str, path: str) -> None:
		"""A function string written past the form (an old row, a direct SQL write)."""
		frappe.db.set_value("BTU Task", task_name, "function_string", path, update_modified=False)
		frappe.clear_document_cache("BTU Task", task_name)

	def test_the_runner_checks_again_and_logs_why(self):
		from btu.btu_core.task_runner import execute_task

		with opt_in(True):
			task = make_task("frappe.utils.data.cint")
		with opt_in(False):
			outcome = execute_task(task.name)
		self.assertEqual(outcome.status, "Failed")
		self.assertIn("'frappe.utils.data.cint' is not declared runnable", outcome.result_message)
		log = frappe.get_doc("BTU Task Log", outcome.log)
		self.assertIn("btu_runnable_functions", log.result_message)
		for on in (False, True):
			with opt_in(on):
				self.smuggle(task.name, "frappe.os.system")
				outcome = execute_task(task.name)
				self.assertEqual(outcome.status, "Failed")
				self.assertIn("reaches 'system' through frappe.os", outcome.result_message)

	def test_a_schedule_save_and_run_now_refuse_a_smuggled_function(self):
		from btu.btu_api.endpoints import run_task_now

		task = make_task()
		self.smuggle(task.name, "frappe.utils.execute_in_shell")
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_schedule(task.name, cron_string=QUIET_CRON)
		self.assertIn("is not declared runnable", str(ctx.exception))
		run = run_task_now(task.name)
		self.assertEqual(run["status"], "Failed")
		self.assertIn("is not declared runnable", run["result_message"])

	def test_run_function_refuses_escapes(self):
		import btu.api

		for on in (False, True):
			with opt_in(on):
				for path in ("frappe.os.system", "frappe.db.sql"):
					with self.subTest(path=path, opt_in=on), self.assertRaises(frappe.ValidationError):
						btu.api.run_function(path, {"command": "id"})
		with opt_in(False), self.assertRaises(frappe.ValidationError):
			btu.api.run_function("frappe.utils.execute_in_shell", {"cmd": "id"})
		run_id = btu.api.run_function("btu.btu_core.sample_tasks.hello", {"name": "api"}, delay=3600)
		self.assertTrue(frappe.db.exists("BTU Task Schedule", run_id))


class TestCounts(BTUTestCase):
	def test_get_count_refuses_btu_doctypes_to_users_who_may_not_read_them(self):
		from btu.btu_api.permissions import get_count

		hooked = frappe.get_hooks("override_whitelisted_methods").get("frappe.client.get_count")
		self.assertEqual(hooked[-1], "btu.btu_api.permissions.get_count")
		self.assertIsInstance(get_count("BTU Task Log"), int)
		frappe.set_user("Guest")
		try:
			with self.assertRaises(frappe.PermissionError):
				get_count("BTU Task Log")
			get_count("ToDo")  # Frappe's own behaviour is left alone for other DocTypes
		finally:
			frappe.set_user("Administrator")
