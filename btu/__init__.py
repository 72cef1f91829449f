"""BTU (Background Tasks Unleashed): a Frappe app and its bundled scheduler daemon.

This package must stay importable without frappe: the daemon imports it.
"""

__version__ = "1.0.0"


RUNNABLE_MARK = "__btu_runnable__"


def runnable(obj):
	"""Declare a function (or a BTU-aware class) of your app runnable by BTU tasks::

	    from btu import runnable

	    @runnable
	    def nightly_cleanup(days: int = 30) -> int: ...

	Only declared functions may be named in a BTU Task (or hooks.py's ``btu_runnable_functions``
	lists them): a site's System Manager picks among what the app's code offers, as Frappe's
	``@frappe.whitelist()`` does for HTTP. docs/security.md explains the rules."""
	setattr(obj, RUNNABLE_MARK, True)
	return obj
