"""BTU Alert: one incident of a schedule's alert rule (btu_core/alerts.py raises and clears it)."""

from __future__ import annotations

from btu.btu_core.text import TextDocument


class BTUAlert(TextDocument):
	pass
