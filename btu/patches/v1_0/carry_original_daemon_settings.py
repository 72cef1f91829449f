"""Upgrade from the original BTU: keep schedules on the wall clock they ran on.

The original daemon read every cron rule in its TOML ``time_zone_string``; BTU 1.0 reads
it in the schedule's own zone, else BTU Configuration's Cron Time Zone. When that setting
is still empty (an upgraded site), fill it with the old daemon's zone, else the system
time zone, so no schedule shifts. Also forget the original default socket path
(/tmp/btu_scheduler.sock) so the Desk and the daemon meet at <bench>/config/.
"""

from __future__ import annotations

import frappe
from frappe.utils import get_system_timezone

from btu.btu_core.legacy_config import ORIGINAL_SOCKET_PATH, original_time_zone


def execute() -> None:
	if not frappe.db.get_single_value("BTU Configuration", "cron_time_zone"):
		zone, source = original_time_zone()
		if zone is None:
			zone, source = get_system_timezone() or "UTC", f"System Settings ({source})"
		frappe.db.set_single_value("BTU Configuration", "cron_time_zone", zone)
		print(f"BTU: Cron Time Zone set to {zone} from {source}")
	socket_path = frappe.db.get_single_value("BTU Configuration", "path_to_btu_scheduler_uds")
	if socket_path == ORIGINAL_SOCKET_PATH and not frappe.conf.get("btu_socket_path"):
		frappe.db.set_single_value("BTU Configuration", "path_to_btu_scheduler_uds", "")
		print(
			f"BTU: socket path {ORIGINAL_SOCKET_PATH} cleared; the bench's config/btu_scheduler.sock is used"
		)
