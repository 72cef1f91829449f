"""BTU Task validation (run with: bench --site <site> run-tests --app btu)."""

from __future__ import annotations

import sys

import frappe

from btu import runnable
from btu.btu_core.testing import BTUTestCase

HERE = "btu.btu_core.doctype.btu_task.test_btu_task"


# --- sample task functions (other BTU test modules use them too) -----------------------------


@runnable
def sample_success(name: str = "world", repeat: int = 1) -> dict:
	for _ in range(repeat):
		print(f"hello {name}")
	print("a note on stderr", file=sys.stderr)
	return {"greeted": name, "times": repeat}


@runnable
def sample_failure() -> None:
	print("about to fail")
	raise ValueError("sample failure")


@runnable
def sample_timeout() -> None:
	from rq.timeouts import JobTimeoutException

	print("working slowly")
	raise JobTimeoutException("Task exceeded maximum timeout value (1 seconds)")


@runnable
def sample_write_then_fail(marker: str) -> None:
	frappe.get_doc({"doctype": "ToDo", "description": marker}).insert(ignore_permissions=True)
	raise RuntimeError("failed after writing")


@runnable
def sample_report_in_progress(task: str) -> None:
	print(
		"in-progress:", bool(frappe.db.exists("BTU Task Log", {"task": task, "success_fail": "In-Progress"}))
	)


NOT_CALLABLE = 42


# --- BTU-aware classes (the original BTU's BTU_AWARE_FUNCTION) ----------------------------------

from btu.btu_core.doctype.btu_task.btu_task import BTU_AWARE_FUNCTION  # noqa: E402 - where users import it


@runnable
class SampleAwareTask(BTU_AWARE_FUNCTION):
	def run(self, name: str = "world") -> str:
		print(f"task {self.btu_task_id} schedule {self.btu_task_schedule_id} greets {name}")
		return f"greeted {name}"


@runnable
class SampleClassWithoutRun:
	pass


@runnable
class SampleClassNeedingSettings:
	def __init__(self, url: str, token: str) -> None:
		self.url = url

	def run(self) -> None:
		pass


def make_task(function: str = "sample_success", arguments: str | None = None, submit: bool = True, **fields):
	"""A BTU Task calling one of this module's sample functions."""
	task = frappe.get_doc(
		{
			"doctype": "BTU Task",
			"desc_short": f"Test {function}",
			"function_string": function if "." in function else f"{HERE}.{function}",
			"arguments": arguments,
			"max_task_duration": 60,
			**fields,
		}
	).insert()
	if submit:
		task.submit()
	return task


class TestBTUTask(BTUTestCase):
	def assert_rejected(self, fragment: str, **fields) -> None:
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_task(submit=False, **fields)
		self.assertIn(fragment, str(ctx.exception))

	def test_valid_task_saves_and_submits(self):
		task = make_task(arguments='{"name": "BTU", "repeat": 2}')
		self.assertEqual(task.docstatus, 1)
		self.assertEqual(task.queue_name, "default")

	def test_missing_module_is_named(self):
		self.assert_rejected(
			"has no attribute or submodule 'no_such_module'", function="btu.no_such_module.run"
		)

	def test_missing_attribute_is_named(self):
		self.assert_rejected(
			f"{HERE}' has no attribute or submodule 'no_such_function'", function=f"{HERE}.no_such_function"
		)

	def test_not_callable_is_rejected(self):
		self.assert_rejected("is a int, not a function", function=f"{HERE}.NOT_CALLABLE")

	def test_function_outside_installed_apps_is_rejected(self):
		self.assert_rejected("'os' is not an installed app", function="os.system")

	def test_not_a_dotted_path_is_rejected(self):
		self.assert_rejected("is not a dotted Python path", function="btu.btu_core/task_runner")

	def test_invalid_json_names_line_and_column(self):
		self.assert_rejected("invalid JSON at line 2, column", arguments='{"name": "x",\n "repeat": }')

	def test_arguments_must_be_an_object(self):
		self.assert_rejected("expected a JSON object", arguments="[1, 2]")

	def test_unexpected_argument_is_rejected(self):
		self.assert_rejected("unexpected keyword argument 'colour'", arguments='{"colour": "blue"}')

	def test_duration_must_be_positive(self):
		self.assert_rejected("Max Task Duration must be a positive number", max_task_duration=0)

	def test_a_btu_aware_class_is_accepted_and_its_run_arguments_checked(self):
		task = make_task("SampleAwareTask", arguments='{"name": "class"}')
		self.assertEqual(task.docstatus, 1)
		self.assert_rejected(
			"Arguments do not fit SampleAwareTask.run(name: 'str' = 'world')",
			function="SampleAwareTask",
			arguments='{"colour": "blue"}',
		)

	def test_a_class_without_run_is_refused_with_what_to_change(self):
		self.assert_rejected(
			"is a class without a run() method; BTU runs a class as "
			"SampleClassWithoutRun(btu_task_id=&lt;task&gt;).run(**arguments). Give it a method "  # shown as text
			"'def run(self, **kwargs)' that does the work, or set Function to a plain function.",
			function="SampleClassWithoutRun",
		)

	def test_a_class_btu_cannot_create_is_refused_with_what_to_change(self):
		self.assert_rejected(
			"needs url, token to be created, but BTU creates the class itself with the task's name only",
			function="SampleClassNeedingSettings",
		)

	def test_code_importing_the_original_task_component_is_told_what_replaces_it(self):
		import os
		import shutil
		import sys
		import tempfile

		import btu.btu_core

		folder = tempfile.mkdtemp(prefix="btu-tc-")
		module = "btu.btu_core.btu_sample_original_code"
		path = os.path.join(folder, "btu_sample_original_code.py")
		with open(path, "w") as handle:
			handle.write(
				"from btu.btu_core.btu_task_component import TaskComponent\n\n\ndef run():\n\tpass\n"
			)
		btu.btu_core.__path__.append(folder)  # the module lives outside the app's folder, under its package
		try:
			self.assert_rejected("btu.api.step('name')", function=f"{module}.run")
			self.assert_rejected("it needs 'btu.btu_core.btu_task_component'", function=f"{module}.run")
		finally:
			btu.btu_core.__path__.remove(folder)
			sys.modules.pop(module, None)
			shutil.rmtree(folder)

	def test_run_only_as_worker_refuses_a_server_run(self):
		from btu.btu_core.task_runner import run_task_on_server

		task = make_task(run_only_as_worker=1)
		with self.assertRaises(frappe.ValidationError) as ctx:
			run_task_on_server(task.name)
		self.assertIn("Run Only As Worker", str(ctx.exception))


class TestTaskLinkSearch(BTUTestCase):
	"""Every Link to a BTU Task searches through btu.btu_api.search (hooks: standard_queries): the
	dropdown's label is the description as text, never markup; the link field's filters apply."""

	def test_link_search_gives_escaped_titles_and_keeps_the_fields_filters(self):
		from frappe.desk.search import search_link

		token = frappe.generate_hash(length=8)
		hostile = f"Search {token} <img src=x onerror=alert(1)>"
		submitted = make_task(desc_short=hostile)
		draft = make_task(desc_short=f"Search {token} draft", submit=False)
		found = {row["value"]: row for row in search_link("BTU Task", token)}
		self.assertEqual(set(found), {submitted.name, draft.name})
		self.assertEqual(found[submitted.name]["label"], f"Search {token} &lt;img src=x onerror=alert(1)&gt;")
		self.assertNotIn("<img", str(found))
		only_submitted = search_link("BTU Task", token, filters={"docstatus": 1})  # the schedule form's
		self.assertEqual([row["value"] for row in only_submitted], [submitted.name])
