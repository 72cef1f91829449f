"""Resolve a BTU Task's ``function_string`` to a Python callable (frappe-free).

Error messages name exactly what is missing: the module, the attribute, or the
dependency that a module failed to import.

A ``function_string`` may also name a **BTU-aware class** (the original BTU's
``BTU_AWARE_FUNCTION``): a class whose ``run(**arguments)`` does the work. BTU creates it
for each run as ``Class(btu_task_id=<task>)`` (or ``Class(<task>)``, or ``Class()``, as its
``__init__`` accepts), sets ``btu_task_id`` and ``btu_task_schedule_id`` on it, and calls
``run`` with the run's arguments; ``check_arguments`` checks them against ``run``.
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass
from typing import Any, Callable

from btu import RUNNABLE_MARK

_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


class CallableError(ValueError):
	"""A function string that does not lead to a callable."""


class BTUAwareFunction:
	"""Base of a BTU-aware task class: subclass it and write ``run(self, **kwargs)``.

	``btu_task_id`` (the BTU Task's name) and ``btu_task_schedule_id`` (the schedule of a
	scheduled run, else None) are set before ``run`` is called. The original BTU's
	``btu.btu_core.doctype.btu_task.btu_task.BTU_AWARE_FUNCTION`` is this class."""

	def __init__(self, btu_task_id: str | None = None) -> None:
		self.btu_task_id = btu_task_id
		self.btu_task_schedule_id: str | None = None

	def run(self, **kwargs: Any) -> Any:
		raise NotImplementedError(f"{type(self).__qualname__} must define run(self, **kwargs).")


@dataclass(frozen=True)
class RunnablePolicy:
	"""What a function path may name on one site.

	``installed_apps``: the site's apps; a path must start with one of them.
	``declared``: paths their hooks offer (``btu_runnable_functions``): a function or class path,
	or ``module.*`` for every public function and class defined in that module.
	``allow_any_app_function``: the server administrator's opt-in (site or bench config
	``btu_allow_any_app_function``) to any function defined in an installed app's own modules."""

	installed_apps: frozenset[str]
	declared: frozenset[str] = frozenset()
	allow_any_app_function: bool = False


ALLOW_ANY_KEY = "btu_allow_any_app_function"
DECLARATION_HOOK = "btu_runnable_functions"


def resolve_callable(path: str, policy: RunnablePolicy) -> Callable[..., Any]:
	"""The function (or BTU-aware class) ``path`` names, when ``policy`` lets a task run it.

	Whatever the policy, a path names ``app.module.name``: a public function or class defined
	in that very module (never an attribute reached through another module or a class, a
	builtin, a module object, or a name starting with ``_``). Then it must be declared runnable
	(``@btu.runnable``, or listed in an app's hooks) unless the server allows any app function."""
	text = (path or "").strip() if isinstance(path, str) else ""
	if not text:
		raise CallableError("Function is empty; expected a dotted path such as 'myapp.tasks.cleanup'.")
	if not _DOTTED.match(text):
		raise CallableError(f"{text!r} is not a dotted Python path such as 'myapp.tasks.cleanup'.")
	parts = text.split(".")
	private = [part for part in parts if part.startswith("_")]
	if private:
		raise CallableError(
			f"{text!r} names {private[0]!r}: names starting with '_' are private and never run."
		)
	if parts[0] not in policy.installed_apps:
		raise CallableError(
			f"{parts[0]!r} is not an installed app; a task function must live in one of: "
			f"{', '.join(sorted(policy.installed_apps))}."
		)

	module, used = _import_longest_prefix(parts)
	module_name = ".".join(parts[:used])
	rest = parts[used:]
	if len(rest) > 1:
		if not hasattr(module, rest[0]):
			kind = "attribute or submodule"
			raise CallableError(f"{module_name!r} has no {kind} {rest[0]!r} (looking up {text!r}).")
		raise CallableError(
			f"{text!r} reaches {rest[-1]!r} through {module_name}.{rest[0]}: a task names a function "
			f"or class defined in a module itself (module.function), never one reached through another "
			"object or module."
		)
	name = rest[0]
	try:
		obj = getattr(module, name)
	except AttributeError:
		raise CallableError(
			f"{module_name!r} has no attribute or submodule {name!r} (looking up {text!r})."
		) from None
	if inspect.ismodule(obj):
		raise CallableError(f"{text!r} is a module, not a function: name a function defined in it.")
	if not (inspect.isfunction(obj) or inspect.isclass(obj)):
		what = "a built-in function" if callable(obj) else f"a {type(obj).__name__}"
		raise CallableError(f"{text!r} is {what}, not a function: name a Python function defined in an app.")
	defined_in = getattr(obj, "__module__", None)
	if defined_in != module_name:
		raise CallableError(
			f"{text!r} is defined in {defined_in!r}, not in {module_name!r}: a task names a function "
			"where it is defined."
		)
	if _declared(obj, text, module_name, policy.declared):
		return obj
	if policy.allow_any_app_function and (inspect.isfunction(obj) or issubclass(obj, BTUAwareFunction)):
		return obj
	raise CallableError(undeclared_message(text))


def undeclared_message(path: str) -> str:
	"""Why an undeclared function is refused, and each thing that would allow it."""
	parts = path.split(".")
	module = ".".join(parts[:-1])
	return (
		f"{path!r} is not declared runnable by BTU, so a task may not run it. Its app can declare it: "
		f"decorate it with @runnable ('from btu import runnable'), or list {path!r} (or {module + '.*'!r}) "
		f"under {DECLARATION_HOOK} in {parts[0]}/hooks.py. Or the server's administrator may let tasks "
		f"run any function defined in an installed app: bench set-config -g {ALLOW_ANY_KEY} 1 "
		"(docs/security.md)."
	)


def _declared(obj: Any, path: str, module_name: str, declared: frozenset[str]) -> bool:
	own = vars(obj) if inspect.isclass(obj) else getattr(obj, "__dict__", {})
	return bool(own.get(RUNNABLE_MARK)) or path in declared or f"{module_name}.*" in declared


def _import_longest_prefix(parts: list[str]) -> tuple[Any, int]:
	"""Import the longest importable module prefix of ``parts``; return it and its length."""
	for used in range(len(parts) - 1, 0, -1):
		name = ".".join(parts[:used])
		try:
			return importlib.import_module(name), used
		except ModuleNotFoundError as exc:
			missing = exc.name or ""
			if missing == name or name.startswith(missing + "."):
				continue  # this prefix is not a module; try a shorter one
			raise CallableError(
				f"Module {name!r} cannot be imported: it needs {missing!r}, which is not installed."
			) from None
		except Exception as exc:  # noqa: BLE001 - any import-time failure of user code
			raise CallableError(f"Module {name!r} cannot be imported: {type(exc).__name__}: {exc}") from None
	raise CallableError(f"No module named {parts[0]!r}.")


def check_arguments(func: Callable[..., Any], kwargs: dict[str, Any], complete: bool = True) -> None:
	"""Raise CallableError when ``func`` cannot be called with these keyword arguments.

	``complete=False`` only rejects unexpected names (required ones may come later,
	e.g. from a schedule's argument overrides).
	"""
	if inspect.isclass(func):
		target = task_class_run(func)
		name = f"{func.__qualname__}.run"
	else:
		target, name = func, getattr(func, "__qualname__", repr(func))
	try:
		signature = inspect.signature(target)
	except (TypeError, ValueError):
		return  # builtins without a signature: cannot check ahead of time
	try:
		if complete:
			signature.bind(**kwargs)
		else:
			signature.bind_partial(**kwargs)
	except TypeError as exc:
		raise CallableError(f"Arguments do not fit {name}{signature}: {exc}.") from None


# --- BTU-aware classes ----------------------------------------------------------------------------


def is_task_class(obj: Any) -> bool:
	return inspect.isclass(obj)


def task_class_run(cls: type) -> Callable[..., Any]:
	"""``cls.run`` as the function the run's arguments go to (without ``self``); raises CallableError
	saying what to change when the class cannot be a task."""
	path = f"{cls.__module__}.{cls.__qualname__}"
	how = f"BTU runs a class as {cls.__name__}(btu_task_id=<task>).run(**arguments)"
	raw = inspect.getattr_static(cls, "run", None)
	if raw is None or not callable(getattr(cls, "run", None)):
		raise CallableError(
			f"{path!r} is a class without a run() method; {how}. Give it a method "
			"'def run(self, **kwargs)' that does the work, or set Function to a plain function."
		)
	if raw is BTUAwareFunction.__dict__["run"]:
		raise CallableError(
			f"{path!r} does not define its own run(); {how}. Add 'def run(self, **kwargs)' to the class."
		)
	_instantiation(cls)  # refuses a class BTU cannot create
	if isinstance(raw, (staticmethod, classmethod)):
		return getattr(cls, "run")
	return _without_first_parameter(raw, path)


def _without_first_parameter(func: Callable[..., Any], path: str) -> Callable[..., Any]:
	"""A stand-in whose signature is ``func``'s without ``self`` (for checking arguments only)."""
	try:
		signature = inspect.signature(func)
	except (TypeError, ValueError):
		return func
	parameters = list(signature.parameters.values())
	if not parameters or parameters[0].kind not in (
		inspect.Parameter.POSITIONAL_ONLY,
		inspect.Parameter.POSITIONAL_OR_KEYWORD,
	):
		raise CallableError(f"{path}.run must take self as its first parameter: 'def run(self, **kwargs)'.")

	def stand_in(*args: Any, **kwargs: Any) -> None:
		return None

	stand_in.__signature__ = signature.replace(parameters=parameters[1:])  # type: ignore[attr-defined]
	stand_in.__qualname__ = getattr(func, "__qualname__", "run")
	return stand_in


def _instantiation(cls: type) -> str:
	"""How BTU creates the class: 'keyword' (btu_task_id=...), 'positional' (one argument) or 'none'."""
	path = f"{cls.__module__}.{cls.__qualname__}"
	try:
		signature = inspect.signature(cls)
	except (TypeError, ValueError):
		return "none"
	parameters = signature.parameters.values()
	if "btu_task_id" in signature.parameters or any(p.kind is p.VAR_KEYWORD for p in parameters):
		return "keyword"
	required = [
		p for p in parameters if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
	]
	positional = [p for p in required if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
	if not required:
		return "none"
	if len(required) == 1 and positional:
		return "positional"
	names = ", ".join(p.name for p in required)
	raise CallableError(
		f"{path!r} needs {names} to be created, but BTU creates the class itself with the task's name "
		f"only: {cls.__name__}(btu_task_id=<task>). Let __init__ take 'btu_task_id' (or nothing) and pass "
		"the other values as arguments of run()."
	)


def bind_task_class(cls: type, task_id: str, schedule_id: str | None = None) -> Callable[..., Any]:
	"""The callable a run calls for a BTU-aware class: create it, tell it its task and schedule, run()."""
	how = _instantiation(cls)

	def run_task_class(**kwargs: Any) -> Any:
		if how == "keyword":
			instance = cls(btu_task_id=task_id)
		elif how == "positional":
			instance = cls(task_id)
		else:
			instance = cls()
		instance.btu_task_id = task_id
		instance.btu_task_schedule_id = schedule_id
		return instance.run(**kwargs)

	run_task_class.__qualname__ = f"{cls.__qualname__}.run"
	return run_task_class
