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

from btu.btu_core.legacy_config import ORIGINAL_SOCKET_PATH
from btu.contracts import protocol
from btu.contracts.protocol import DaemonReply

Action = Literal["create", "cancel"]

_PENDING_FLAG = "btu_daemon_pending"
_WARNED_FLAG = "btu_daemon_unreachable_warned"
PROBE_SECONDS = 0.5


def socket_path() -> str:
	"""The daemon's socket, as the server's administrator set it: ``btu_socket_path`` of
	(common_)site_config, else the bench default. BTU Configuration's path counts only when it is
	the original BTU's ``/tmp/btu_scheduler.sock`` (kept by the upgrade while a BTU daemon answers
	there): a site's System Manager must not point the Desk at another Unix socket of the server.
	(``frappe.flags.btu_socket_path`` overrides all for this process only: BTU's tests point it at
	a daemon of their own.)"""
	if frappe.flags.get("btu_socket_path"):
		return frappe.flags.btu_socket_path
	from_conf = (frappe.conf.get("btu_socket_path") or "").strip()
	if from_conf:
		return from_conf
	configured = (frappe.db.get_single_value("BTU Configuration", "path_to_btu_scheduler_uds") or "").strip()
	if configured == ORIGINAL_SOCKET_PATH:
		return configured
	from frappe.utils import get_bench_path

	return protocol.default_socket_path(get_bench_path())


def notify_after_commit(action: Action, schedule_name: str) -> None:
	"""Tell the daemon about a schedule change once the current transaction has committed.

	The daemon's reachability is checked now, inside the request (a ping costs about a
	millisecond, and fails at once when no daemon listens): when it is down, the warning goes
	out with this request's own response, where the Desk shows it whole.
	"""
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
		probe = protocol.ping(path, timeout=PROBE_SECONDS)
		if not probe.reachable:
			warn_unreachable(probe, after_commit=False)
	pending[schedule_name] = action


def send_pending(path: str, site: str, actions: dict[str, Action]) -> list[DaemonReply]:
	"""Send the collected actions; stop at the first unreachable reply (one warning, no long waits)."""
	replies: list[DaemonReply] = []
	for name, action in actions.items():
		send = protocol.create_task_schedule if action == "create" else protocol.cancel_task_schedule
		reply = send(path, name, site)
		replies.append(reply)
		if not reply.reachable:
			warn_unreachable(reply, after_commit=True)
			break
		if not reply.ok:
			frappe.logger("btu").warning(f"BTU daemon refused {action} of {name} on {site}: {reply.message}")
	return replies


def unreachable_message(reply: DaemonReply) -> str:
	"""What the Desk says when a change could not be told to the daemon (HTML-escaped)."""
	return _(
		"The change is saved, but the BTU scheduler daemon did not hear of it: {0} "
		"The daemon picks the change up when it is back (it resyncs every schedule when it starts "
		"and at each full refresh)."
	).format(escape_html(reply.message))


def warn_unreachable(reply: DaemonReply, after_commit: bool) -> None:
	"""One orange message per request or job.

	Inside the request (before its response is built) it is a plain msgprint, shown with the
	save's own response. After the commit (the daemon went away since the probe) the response is
	already built: then it goes to the session user over the websocket.
	"""
	if frappe.flags.get(_WARNED_FLAG):
		return
	frappe.flags[_WARNED_FLAG] = True
	frappe.logger("btu").warning(f"BTU daemon unreachable: {reply.message}")
	text, title = unreachable_message(reply), _("BTU Scheduler Daemon Unreachable")
	if after_commit:
		message = {"message": text, "title": title, "indicator": "orange"}
		frappe.publish_realtime("msgprint", message, user=frappe.session.user)
	else:
		frappe.msgprint(text, title=title, indicator="orange")


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
	"""Ask the daemon for a full refresh of this site once the current transaction has committed
	(its reachability checked now, as for schedule changes)."""
	path, site = socket_path(), frappe.local.site

	def send() -> None:
		reply = protocol.refresh(path, site)
		if not reply.reachable:
			warn_unreachable(reply, after_commit=True)

	frappe.db.after_commit.add(send)
	probe = protocol.ping(path, timeout=PROBE_SECONDS)
	if not probe.reachable:
		warn_unreachable(probe, after_commit=False)
