"""The step recorder (btu.btu_core.steps), frappe-free: names, statuses, durations, output, nesting,
limits, and that a step outside a BTU run only runs its block."""

from __future__ import annotations

import pytest

from btu.btu_core import steps
from btu.btu_core.output_capture import capture_output
from btu.btu_core.steps import StepError, recording, step


class JobTimeoutException(Exception):
	"""Named like rq's: the recorder recognises the timeout by name (it imports no rq)."""


def test_steps_record_name_status_output_and_nesting_in_start_order():
	with capture_output() as run_output, recording() as recorder:
		with step("Fetch  orders") as fetch:
			print("3 orders")
			with step("Inner"):
				print("inner line")
		with step("Post"):
			pass
	rows = recorder.rows()
	assert [(r["step_name"], r["status"], r["depth"]) for r in rows] == [
		("Fetch orders", "Success", 0),
		("Inner", "Success", 1),
		("Post", "Success", 0),
	]
	assert rows[0]["output"] == "3 orders\ninner line\n"
	assert rows[1]["output"] == "inner line\n"
	assert rows[2]["output"] == ""
	assert run_output.text == "3 orders\ninner line\n"  # the run keeps everything its steps printed
	assert fetch.duration >= rows[1]["duration"] >= 0
	assert rows[0]["started_at"] <= rows[1]["started_at"] <= rows[2]["started_at"]


def test_a_failing_step_is_marked_failed_and_the_exception_goes_on():
	with recording() as recorder:
		with pytest.raises(RuntimeError, match="boom"):
			with step("Load"):
				print("loading")
				raise RuntimeError("boom")
		try:
			with step("Optional part"):
				raise KeyError("missing")
		except KeyError:
			pass  # the task caught it: the run may still succeed
	rows = recorder.rows()
	assert [r["status"] for r in rows] == ["Failed", "Failed"]
	assert rows[0]["output"] == "loading\nRuntimeError: boom"
	assert rows[1]["output"] == "KeyError: 'missing'"


def test_an_rq_timeout_inside_a_step_is_a_timeout():
	with recording() as recorder, pytest.raises(JobTimeoutException):
		with step("Slow"):
			raise JobTimeoutException("Task exceeded maximum timeout value (3 seconds)")
	(row,) = recorder.rows()
	assert row["status"] == "Timeout"
	assert "JobTimeoutException: Task exceeded maximum timeout value (3 seconds)" in row["output"]


def test_the_decorator_records_one_step_per_call():
	@step("Send invoice")
	def send(number: int) -> int:
		print(f"invoice {number}")
		return number * 2

	with recording() as recorder:
		assert send(1) == 2
		assert send(2) == 4
	rows = recorder.rows()
	assert [(r["step_name"], r["output"]) for r in rows] == [
		("Send invoice", "invoice 1\n"),
		("Send invoice", "invoice 2\n"),
	]
	assert send.__name__ == "send"


def test_outside_a_run_a_step_only_runs_its_block():
	assert steps.current_recorder() is None
	with capture_output() as output:
		with step("Alone") as record:
			print("printed")
	assert output.text == "printed\n"  # not taken away by the step
	assert record.status == "Success" and record.output == ""


def test_a_run_keeps_at_most_max_steps_and_counts_the_rest():
	with recording(max_steps=2) as recorder:
		for number in range(5):
			try:
				with step(f"Step {number}"):
					if number == 4:
						raise ValueError("last one fails")
			except ValueError:
				pass
	rows = recorder.rows()
	assert [r["step_name"] for r in rows[:2]] == ["Step 0", "Step 1"]
	assert rows[2]["step_name"] == "(3 more steps not kept: a run keeps at most 2)"
	assert rows[2]["status"] == "Failed" and rows[2]["output"] == "1 of them failed."
	assert len(rows) == 3


def test_recordings_nest_and_restore_the_outer_one():
	with recording() as outer:
		with step("Outer run"):
			with recording() as inner:
				with step("Inner run"):
					pass
		assert steps.current_recorder() is outer
	assert [r["step_name"] for r in outer.rows()] == ["Outer run"]
	assert [r["step_name"] for r in inner.rows()] == ["Inner run"]
	assert steps.current_recorder() is None


def test_long_output_and_long_names_are_bounded():
	with recording() as recorder:
		with step("x" * 300):
			print("y" * (steps.MAX_STEP_OUTPUT * 2))
	(row,) = recorder.rows()
	assert len(row["step_name"]) == steps.MAX_NAME_CHARS and row["step_name"].endswith("…")
	assert "characters omitted" in row["output"]
	assert len(row["output"]) < steps.MAX_STEP_OUTPUT + 100


@pytest.mark.parametrize(
	("name", "message"),
	[
		(None, "A step's name must be a string, e.g. step('Load orders'); got NoneType None."),
		("   ", "A step's name must not be empty"),
		(42, "got int 42"),
	],
)
def test_bad_names_are_refused_with_what_to_write(name, message):
	with pytest.raises(StepError) as info:
		step(name)
	assert message in str(info.value)


def test_a_bare_decorator_says_to_give_a_name():
	with pytest.raises(StepError, match=r"@step needs a name: write @step\('Send invoices'\)"):

		@step
		def send() -> None:
			pass


def test_a_step_object_is_used_once():
	once = step("Once")
	with once:
		pass
	with pytest.raises(StepError, match="already in use"):
		with once:
			pass
