"""BTU (Background Tasks Unleashed): a Frappe app and its bundled scheduler daemon.

This package must stay importable without frappe: the daemon imports it.
"""

__version__ = "1.0.0"
