"""Which functions a site's tasks may run: the policy read from the site's apps and config.

A site's System Manager is not the server's administrator: a task may name only what an app's
code declares runnable (``@btu.runnable`` or hooks.py's ``btu_runnable_functions``), unless the
server's administrator sets ``btu_allow_any_app_function`` in site_config.json or
common_site_config.json (files a System Manager cannot write), as Frappe's own
``server_script_enabled`` does for Server Scripts. Every path that names a function goes
through ``resolve_task_function``: the task form, a schedule's save, Run now, ``btu.api``, and
the runner again at execution."""

from __future__ import annotations

from typing import Any, Callable

import frappe
from frappe.utils import cint

from btu.btu_core.callables import ALLOW_ANY_KEY, DECLARATION_HOOK, RunnablePolicy, resolve_callable


def site_policy() -> RunnablePolicy:
	"""This site's policy: its installed apps, their declarations, the server's opt-in."""
	declared = frozenset(
		str(entry).strip() for entry in (frappe.get_hooks(DECLARATION_HOOK) or []) if str(entry).strip()
	)
	return RunnablePolicy(
		installed_apps=frozenset(frappe.get_installed_apps()),
		declared=declared,
		allow_any_app_function=bool(cint(frappe.conf.get(ALLOW_ANY_KEY))),
	)


def resolve_task_function(path: str) -> Callable[..., Any]:
	"""The callable ``path`` names if this site's tasks may run it (raises CallableError saying why not)."""
	return resolve_callable(path, site_policy())
