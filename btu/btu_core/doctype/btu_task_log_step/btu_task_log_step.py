"""BTU Task Log Step: one named step of a run (child table of BTU Task Log, written by the task runner)."""

from __future__ import annotations

from btu.btu_core.text import TextDocument


class BTUTaskLogStep(TextDocument):
	pass
