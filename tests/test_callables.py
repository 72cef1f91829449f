"""Function strings (btu.btu_core.callables): resolving a task's dotted path and checking its
arguments, with errors that name what is missing. Runs without frappe."""

from __future__ import annotations

import json

import pytest


def policy(declared=(), allow_any=False, apps=("btu", "json", "os", "tests")):
	from btu.btu_core.callables import RunnablePolicy

	return RunnablePolicy(frozenset(apps), frozenset(declared), allow_any)


def test_declared_functions_and_classes_resolve():
	from btu.btu_core import sample_tasks
	from btu.btu_core.callables import resolve_callable

	assert resolve_callable("btu.btu_core.sample_tasks.hello", policy()) is sample_tasks.hello
	assert (
		resolve_callable("btu.btu_core.sample_tasks.GreetingReport", policy()) is sample_tasks.GreetingReport
	)
	# declared by hooks: an exact path, or every public function of a module
	assert resolve_callable("json.dumps", policy(["json.dumps"])) is json.dumps
	assert resolve_callable("btu.contracts.arguments.parse_arguments", policy(["btu.contracts.arguments.*"]))


def test_undeclared_functions_are_refused_with_what_would_allow_them():
	from btu.btu_core.callables import CallableError, resolve_callable

	with pytest.raises(CallableError) as info:
		resolve_callable("btu.contracts.arguments.parse_arguments", policy())
	message = str(info.value)
	assert "'btu.contracts.arguments.parse_arguments' is not declared runnable" in message
	assert "@runnable" in message and "btu_runnable_functions in btu/hooks.py" in message
	assert "'btu.contracts.arguments.*'" in message
	assert "bench set-config -g btu_allow_any_app_function 1" in message
	# the server administrator's opt-in lets any function defined in an app's own module run
	assert resolve_callable("btu.contracts.arguments.parse_arguments", policy(allow_any=True))


# Paths that escape to a shell, SQL or arbitrary code are refused whatever the policy says, the
# server's opt-in included.
@pytest.mark.parametrize("allow_any", [False, True])
@pytest.mark.parametrize(
	("path", "message"),
	[
		("btu.contracts.arguments.json.dumps", "reaches 'dumps' through btu.contracts.arguments.json"),
		("btu.btu_core.callables.importlib.import_module", "reaches 'import_module' through"),
		("btu.btu_core.callables.inspect", "is a module, not a function"),
		("btu.btu_core.callables.dataclass", "is defined in 'dataclasses', not in 'btu.btu_core.callables'"),
		("btu.btu_core.callables._declared", "names '_declared': names starting with '_' are private"),
		("btu.btu_core.callables.__builtins__", "names '__builtins__'"),
		("btu.btu_core.callables.RunnablePolicy", "not declared runnable"),  # a class, not BTU-aware
		("btu.btu_core.callables.BTUAwareFunction.run", "reaches 'run' through"),
		("json.decoder.JSONDecoder.decode", "reaches 'decode' through json.decoder.JSONDecoder"),
		("os.system", "is a built-in function, not a function"),
		("btu.contracts.schedule_rules.FREQUENCIES", "is a tuple, not a function"),
		("builtins.exec", "'builtins' is not an installed app"),
		("subprocess.run", "'subprocess' is not an installed app"),
	],
)
def test_escapes_are_refused_with_the_opt_in_off_and_on(path, message, allow_any):
	from btu.btu_core.callables import CallableError, resolve_callable

	with pytest.raises(CallableError) as info:
		resolve_callable(path, policy(allow_any=allow_any))
	assert message in str(info.value)


def test_a_hook_cannot_declare_a_builtin_or_an_attribute_reached_through_a_module():
	from btu.btu_core.callables import CallableError, resolve_callable

	for path in ("os.system", "btu.contracts.arguments.json.dumps"):
		with pytest.raises(CallableError):
			resolve_callable(path, policy([path, path.rsplit(".", 1)[0] + ".*"], allow_any=True))


@pytest.mark.parametrize(
	("path", "apps", "message"),
	[
		("json.dumpz", ("json",), "'json' has no attribute or submodule 'dumpz'"),
		("btu.btu_core.nope.run", ("btu",), "'btu.btu_core' has no attribute or submodule 'nope'"),
		("no_such_package.tasks.run", ("no_such_package",), "No module named 'no_such_package'"),
		("os.system", ("btu", "frappe"), "'os' is not an installed app"),
		("run", ("btu",), "is not a dotted Python path"),
		("", ("btu",), "Function is empty"),
	],
)
def test_resolve_callable_names_what_is_missing(path, apps, message):
	from btu.btu_core.callables import CallableError, resolve_callable

	with pytest.raises(CallableError) as info:
		resolve_callable(path, policy(apps=apps, allow_any=True))
	assert message in str(info.value)


def test_resolve_callable_reports_a_broken_dependency(tmp_path, monkeypatch):
	from btu.btu_core.callables import CallableError, resolve_callable

	package = tmp_path / "btu_sample_pkg"
	package.mkdir()
	(package / "__init__.py").write_text("")
	(package / "tasks.py").write_text("import btu_missing_dependency\n\ndef run():\n    pass\n")
	monkeypatch.syspath_prepend(str(tmp_path))
	with pytest.raises(CallableError) as info:
		resolve_callable("btu_sample_pkg.tasks.run", policy(apps=("btu_sample_pkg",), allow_any=True))
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
