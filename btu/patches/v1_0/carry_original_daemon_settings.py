"""Upgrade from the original BTU: make the Desk and the daemon meet on one socket.

The original Desk talked to BTU Configuration's *Path to BTU Scheduler Socket*, by default
/tmp/btu_scheduler.sock, where the original daemon listened (``socket_path`` of its TOML). BTU
listens at ``<bench>/config/btu_scheduler.sock`` when run the bench way. This patch looks at what
answers on the old path before it decides:

* nothing, or the original daemon (which must be stopped: two daemons would run every run twice):
  the old default is cleared, so the Desk uses the bench's socket; the patch says so, and what to
  change if BTU's daemon is later run outside the bench with the original TOML (whose
  ``socket_path`` would put it back in /tmp while the Desk looks in the bench);
* BTU's own daemon (run outside the bench with the original TOML): the path is kept, since that is
  where the daemon is.

The time zone is not this patch's business any more: ``migrate_original_schedules`` gives every
schedule the zone the original daemon read it in (BTU Configuration's ``cron_time_zone``; the
TOML's ``time_zone_string`` only formatted log lines).
"""

from __future__ import annotations

import frappe
from frappe.utils import get_bench_path

from btu.btu_core.legacy_config import (
	BTU_DAEMON,
	ORIGINAL_DAEMON,
	ORIGINAL_SOCKET_PATH,
	SOMETHING_ELSE,
	original_socket_path,
	probe_socket,
)
from btu.contracts.protocol import default_socket_path


def execute() -> None:
	configured = (frappe.db.get_single_value("BTU Configuration", "path_to_btu_scheduler_uds") or "").strip()
	bench_socket = default_socket_path(get_bench_path())
	if configured and configured not in (ORIGINAL_SOCKET_PATH, bench_socket):
		kind, said = probe_socket(configured)
		if kind != BTU_DAEMON:
			message = (
				f"BTU Configuration > Path to BTU Scheduler Socket is {configured!r}, where no BTU daemon "
				f"answers ({said}); the Desk talks to that path only. Empty it to use {bench_socket}, or "
				"start BTU's daemon with that socket_path"
			)
			say(message)
			frappe.log_error(title="BTU upgrade: no BTU daemon at the configured socket", message=message)
		return
	if configured != ORIGINAL_SOCKET_PATH or frappe.conf.get("btu_socket_path"):
		return
	kind, said = probe_socket(ORIGINAL_SOCKET_PATH)
	if kind == BTU_DAEMON:
		say(
			f"BTU's daemon answers at {ORIGINAL_SOCKET_PATH} ({said}); the socket path is kept. To run it "
			f"the bench way instead, empty BTU Configuration > Path to BTU Scheduler Socket so the Desk uses "
			f"{bench_socket}"
		)
		return
	frappe.db.set_single_value("BTU Configuration", "path_to_btu_scheduler_uds", "")
	say(f"socket path {ORIGINAL_SOCKET_PATH} cleared; the Desk now uses {bench_socket}")
	if kind == ORIGINAL_DAEMON:
		message = (
			f"the original BTU daemon still answers at {ORIGINAL_SOCKET_PATH}: stop it for good "
			"(e.g. sudo systemctl disable --now btu_scheduler.service) before starting BTU's daemon, "
			"or both will enqueue the same runs"
		)
		say(message)
		frappe.log_error(title="BTU upgrade: the original daemon is still running", message=message)
	elif kind == SOMETHING_ELSE:
		say(f"something that is not a BTU daemon answers at {ORIGINAL_SOCKET_PATH}: {said!r}")
	toml_socket, toml_path = original_socket_path()
	if toml_socket and toml_socket != bench_socket:
		message = (
			f"{toml_path} says socket_path = {toml_socket!r}: a daemon started with that file "
			f"(btu-scheduler run --config {toml_path}) listens there while the Desk talks to "
			f"{bench_socket}. Run the daemon the bench way (bench btu-scheduler setup-supervisor), or set "
			f'socket_path = "{bench_socket}" in that file'
		)
		say(message)
		frappe.log_error(
			title="BTU upgrade: the original daemon's TOML points to another socket", message=message
		)


def say(line: str) -> None:
	print(f"BTU upgrade: {line}")
