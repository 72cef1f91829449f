"""Read what an upgrade needs from the original (Rust) BTU daemon's TOML file (frappe-free)."""

from __future__ import annotations

from pathlib import Path

import tomllib

from btu.contracts.schedule_rules import TimeZoneError, validate_timezone

ORIGINAL_CONFIG_PATHS = (
	Path("/etc/btu_scheduler/btu_scheduler.toml"),
	Path("/etc/btu_scheduler/.btu_scheduler.toml"),
)
ORIGINAL_SOCKET_PATH = "/tmp/btu_scheduler.sock"


def original_time_zone(paths: tuple[Path, ...] = ORIGINAL_CONFIG_PATHS) -> tuple[str | None, str]:
	"""The original daemon's ``time_zone_string`` and where it came from (or why there is none).

	Returns (zone, explanation); zone is None when no readable file holds a valid IANA name.
	"""
	reasons = []
	for path in paths:
		try:
			data = tomllib.loads(path.read_text(encoding="utf-8"))
		except FileNotFoundError:
			continue
		except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
			reasons.append(f"{path}: unreadable ({exc})")
			continue
		zone = data.get("time_zone_string")
		if not isinstance(zone, str) or not zone.strip():
			reasons.append(f"{path}: no time_zone_string")
			continue
		try:
			validate_timezone(zone)
		except TimeZoneError as exc:
			reasons.append(f"{path}: {exc}")
			continue
		return zone.strip(), f"time_zone_string of {path}"
	return None, "; ".join(reasons) or "no original BTU daemon configuration file found"
