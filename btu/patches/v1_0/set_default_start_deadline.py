"""Give BTU Configuration's new Default Start Deadline its default on sites that existed before it.

A Single's new field has no row in tabSingles on an existing site, and reading it gives 0 (no
deadline); this writes the default (3600 s, the daemon's misfire grace) where no value is stored,
so an upgraded site behaves as a new one (``btu.install.ensure_start_deadline``, which installs
run too); a value an administrator set is kept.
"""

from __future__ import annotations

from btu.install import ensure_start_deadline


def execute() -> None:
	ensure_start_deadline()
