"""Function strings (btu.btu_core.callables): resolving a task's dotted path and checking its
arguments, with errors that name what is missing. Runs without frappe."""

from __future__ import annotations

import json

import pytest


def test_resolve_callable_finds_functions_and_methods():
	from btu.btu_core.callables import resolve_callable

	assert resolve_callable("json.dumps") is json.dumps
	assert resolve_callable("json.decoder.JSONDecoder.decode") is json.decoder.JSONDecoder.decode
	assert (
		resolve_callable("btu.contracts.arguments.parse_arguments", allowed_packages=["btu"]).__name__
		== "parse_arguments"
	)


@pytest.mark.parametrize(
	("path", "allowed", "message"),
	[
		("json.dumpz", None, "'json' has no attribute or submodule 'dumpz'"),
		("btu.btu_core.nope.run", None, "'btu.btu_core' has no attribute or submodule 'nope'"),
		("no_such_package.tasks.run", None, "No module named 'no_such_package'"),
		("json.decoder.JSONDecoder.nope", None, "'json.decoder.JSONDecoder' has no attribute 'nope'"),
		("btu.contracts.schedule_rules.FREQUENCIES", None, "is a tuple, not a function"),
		("os.system", ["btu", "frappe"], "'os' is not an installed app"),
		("run", None, "is not a dotted Python path"),
		("", None, "Function is empty"),
	],
)
def test_resolve_callable_names_what_is_missing(path, allowed, message):
	from btu.btu_core.callables import CallableError, resolve_callable

	with pytest.raises(CallableError) as info:
		resolve_callable(path, allowed_packages=allowed)
	assert message in str(info.value)


def test_resolve_callable_reports_a_broken_dependency(tmp_path, monkeypatch):
	from btu.btu_core.callables import CallableError, resolve_callable

	package = tmp_path / "btu_sample_pkg"
	package.mkdir()
	(package / "__init__.py").write_text("")
	(package / "tasks.py").write_text("import btu_missing_dependency\n\ndef run():\n    pass\n")
	monkeypatch.syspath_prepend(str(tmp_path))
	with pytest.raises(CallableError) as info:
		resolve_callable("btu_sample_pkg.tasks.run")
	assert "'btu_sample_pkg.tasks' cannot be imported: it needs 'btu_missing_dependency'" in str(info.value)


def test_check_arguments_distinguishes_partial_and_complete():
	from btu.btu_core.callables import CallableError, check_arguments

	def task(days: int, dry_run: bool = False) -> None:
		return None

	check_arguments(task, {}, complete=False)
	check_arguments(task, {"days": 3})
	with pytest.raises(CallableError, match="missing a required argument: 'days'"):
		check_arguments(task, {"dry_run": True})
	with pytest.raises(CallableError, match="unexpected keyword argument 'weeks'"):
		check_arguments(task, {"weeks": 1}, complete=False)
