"""Resolve a BTU Task's ``function_string`` to a Python callable (frappe-free).

Error messages name exactly what is missing: the module, the attribute, or the
dependency that a module failed to import.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any, Callable, Iterable

_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


class CallableError(ValueError):
	"""A function string that does not lead to a callable."""


def resolve_callable(path: str, allowed_packages: Iterable[str] | None = None) -> Callable[..., Any]:
	"""Import ``package.module.function`` (or ``...Class.method``) and return the callable.

	``allowed_packages``: when given, the first component must be one of them (BTU passes
	the site's installed apps, so a task cannot name ``os.system`` or ``subprocess.run``).
	"""
	text = (path or "").strip() if isinstance(path, str) else ""
	if not text:
		raise CallableError("Function is empty; expected a dotted path such as 'myapp.tasks.cleanup'.")
	if not _DOTTED.match(text):
		raise CallableError(f"{text!r} is not a dotted Python path such as 'myapp.tasks.cleanup'.")
	parts = text.split(".")
	if allowed_packages is not None:
		allowed = sorted(set(allowed_packages))
		if parts[0] not in allowed:
			raise CallableError(
				f"{parts[0]!r} is not an installed app; a task function must live in one of: {', '.join(allowed)}."
			)

	module, used = _import_longest_prefix(parts)
	obj: Any = module
	owner = ".".join(parts[:used])
	for index in range(used, len(parts)):
		attribute = parts[index]
		try:
			obj = getattr(obj, attribute)
		except AttributeError:
			kind = "attribute or submodule" if inspect.ismodule(obj) else "attribute"
			raise CallableError(f"{owner!r} has no {kind} {attribute!r} (looking up {text!r}).") from None
		owner = f"{owner}.{attribute}"
	if not callable(obj):
		raise CallableError(f"{text!r} is a {type(obj).__name__}, not a function.")
	return obj


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
	try:
		signature = inspect.signature(func)
	except (TypeError, ValueError):
		return  # builtins without a signature: cannot check ahead of time
	try:
		if complete:
			signature.bind(**kwargs)
		else:
			signature.bind_partial(**kwargs)
	except TypeError as exc:
		name = getattr(func, "__qualname__", repr(func))
		raise CallableError(f"Arguments do not fit {name}{signature}: {exc}.") from None
