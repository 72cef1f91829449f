"""BTU-aware classes (btu.btu_core.callables), frappe-free: a function_string naming a class whose
run() does the work, as the original BTU's BTU_AWARE_FUNCTION; what BTU refuses and why."""

from __future__ import annotations

import pytest

from btu.btu_core.callables import (
	BTUAwareFunction,
	CallableError,
	bind_task_class,
	check_arguments,
	task_class_run,
)


class Report(BTUAwareFunction):
	def run(self, days: int, title: str = "report") -> dict:
		return {"task": self.btu_task_id, "schedule": self.btu_task_schedule_id, "days": days, "title": title}


class OriginalStyle:
	"""The original's calling convention: one positional argument, the task's name."""

	def __init__(self, task):
		self.task = task

	def run(self, **kwargs):
		return (self.task, self.btu_task_id, kwargs)


class NoInit:
	def run(self):
		return self.btu_task_id


class WithStatic:
	@staticmethod
	def run(x: int) -> int:
		return x + 1


class NoRun:
	pass


class NeedsConnection:
	def __init__(self, url, token):
		self.url = url

	def run(self):
		pass


class InheritsRunOnly(BTUAwareFunction):
	pass


class RunWithoutSelf:
	def run(*, fast: bool = False):  # noqa: N805 - a mistake BTU names
		pass


def test_a_class_runs_as_class_of_the_task_then_run_with_the_arguments():
	run = bind_task_class(Report, "BTU-00042", "TS-000007")
	assert run(days=3) == {"task": "BTU-00042", "schedule": "TS-000007", "days": 3, "title": "report"}
	assert bind_task_class(OriginalStyle, "BTU-1")(a=1) == ("BTU-1", "BTU-1", {"a": 1})
	assert bind_task_class(NoInit, "BTU-2")() == "BTU-2"
	assert bind_task_class(WithStatic, "BTU-3")(x=1) == 2


def test_arguments_are_checked_against_run_without_self():
	check_arguments(Report, {"days": 1})
	check_arguments(Report, {}, complete=False)
	with pytest.raises(CallableError, match=r"Arguments do not fit Report\.run\(days: .*'weeks'"):
		check_arguments(Report, {"weeks": 1}, complete=False)
	with pytest.raises(CallableError, match="missing a required argument: 'days'"):
		check_arguments(Report, {"title": "x"})
	check_arguments(WithStatic, {"x": 1})


@pytest.mark.parametrize(
	("cls", "message"),
	[
		(
			NoRun,
			"is a class without a run() method; BTU runs a class as NoRun(btu_task_id=<task>).run(**arguments). Give it a method 'def run(self, **kwargs)'",
		),
		(
			InheritsRunOnly,
			"does not define its own run(); BTU runs a class as InheritsRunOnly(btu_task_id=<task>).run(**arguments). Add 'def run(self, **kwargs)'",
		),
		(
			NeedsConnection,
			"needs url, token to be created, but BTU creates the class itself with the task's name only",
		),
		(RunWithoutSelf, "RunWithoutSelf.run must take self as its first parameter"),
	],
)
def test_classes_btu_cannot_run_are_refused_with_what_to_change(cls, message):
	with pytest.raises(CallableError) as info:
		task_class_run(cls)
	assert message in str(info.value)
	with pytest.raises(CallableError):
		check_arguments(cls, {}, complete=False)


def test_the_base_class_says_run_is_missing_when_called():
	with pytest.raises(NotImplementedError, match="InheritsRunOnly must define run"):
		InheritsRunOnly("BTU-1").run()
