"""Frappe side of the conversation with the BTU scheduler daemon.

Schedule changes are announced only after the database transaction commits
(``frappe.db.after_commit``), so the daemon never reads a row that is not there yet
and hears nothing about changes that were rolled back. Several changes within one
transaction go out together, last action per schedule wins.
"""

from __future__ import annotations

from typing import Literal

import frappe
from frappe import _
from frappe.utils import escape_html

from btu.contracts import protocol
from btu.contracts.protocol import DaemonReply

Action = Literal["create", "cancel"]

_PENDING_FLAG = "btu_daemon_pending"
_WARNED_FLAG = "btu_daemon_unreachable_warned"


def socket_path() -> str:
	"""BTU Configuration's path, else ``btu_socket_path`` of (common_)site_config, else the bench default."""
	configured = (frappe.db.get_single_value("BTU Configuration", "path_to_btu_scheduler_uds") or "").strip()
	if configured:
		return configured
	from_conf = (frappe.conf.get("btu_socket_path") or "").strip()
	if from_conf:
		return from_conf
	from frappe.utils import get_bench_path

	return protocol.default_socket_path(get_bench_path())


def notify_after_commit(action: Action, schedule_name: str) -> None:
	"""Tell the daemon about a schedule change once the current transaction has committed."""
	pending: dict[str, Action] | None = frappe.flags.get(_PENDING_FLAG)
	if pending is None:
		pending = {}
		frappe.flags[_PENDING_FLAG] = pending
		path, site = socket_path(), frappe.local.site

		def flush() -> None:
			if frappe.flags.get(_PENDING_FLAG) is pending:
				frappe.flags[_PENDING_FLAG] = None
			send_pending(path, site, dict(pending))

		def discard() -> None:
			if frappe.flags.get(_PENDING_FLAG) is pending:
				frappe.flags[_PENDING_FLAG] = None

		frappe.db.after_commit.add(flush)
		frappe.db.after_rollback.add(discard)
	pending[schedule_name] = action


def send_pending(path: str, site: str, actions: dict[str, Action]) -> list[DaemonReply]:
	"""Send the collected actions; stop at the first unreachable reply (one warning, no long waits)."""
	replies: list[DaemonReply] = []
	for name, action in actions.items():
		send = protocol.create_task_schedule if action == "create" else protocol.cancel_task_schedule
		reply = send(path, name, site)
		replies.append(reply)
		if not reply.reachable:
			warn_unreachable(reply)
			break
		if not reply.ok:
			frappe.logger("btu").warning(f"BTU daemon refused {action} of {name} on {site}: {reply.message}")
	return replies


def warn_unreachable(reply: DaemonReply) -> None:
	"""One orange message per request or job.

	Sent over the websocket to the session user: the HTTP response of the save was built
	before the commit that triggered this, so a plain msgprint would never arrive.
	"""
	if frappe.flags.get(_WARNED_FLAG):
		return
	frappe.flags[_WARNED_FLAG] = True
	frappe.logger("btu").warning(f"BTU daemon unreachable: {reply.message}")
	message = _(
		"The change was saved, but the BTU scheduler daemon is unreachable ({0}). "
		"Its next full refresh will pick the change up."
	).format(escape_html(reply.message))
	frappe.publish_realtime(
		"msgprint",
		{"message": message, "title": _("BTU Scheduler Daemon Unreachable"), "indicator": "orange"},
		user=frappe.session.user,
	)


def reply_as_dict(reply: DaemonReply, path: str) -> dict:
	"""A DaemonReply for the browser."""
	return {
		"ok": reply.ok,
		"reachable": reply.reachable,
		"message": reply.message,
		"elapsed_ms": reply.elapsed_ms,
		"socket_path": path,
		"data": reply.data,
	}


def refresh_after_commit() -> None:
	"""Ask the daemon for a full refresh of this site once the current transaction has committed."""
	path, site = socket_path(), frappe.local.site

	def send() -> None:
		reply = protocol.refresh(path, site)
		if not reply.reachable:
			warn_unreachable(reply)

	frappe.db.after_commit.add(send)
