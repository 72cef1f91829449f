"""Give BTU Configuration's settings where 0 is a choice their defaults on sites that existed
before them: Default Start Deadline (3600 s, the daemon's misfire grace) and Keep Finished
One-shots (30 days). A Single's new field has no row in tabSingles on an existing site and reads
as 0 (no deadline, keep all); this writes the default where no value is stored, so an upgraded site
behaves as a new one (``btu.install.ensure_numeric_defaults``, which installs run too); a value an
administrator set is kept.
"""

from __future__ import annotations

from btu.install import ensure_numeric_defaults


def execute() -> None:
	ensure_numeric_defaults()
