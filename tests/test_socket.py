"""The socket protocol against the real daemon: good requests, bad ones, and the daemon still serving."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time

from btu.contracts import protocol

from .conftest import SITE
from .services import wait_for


def raw_exchange(path: str, payload: bytes, read_timeout: float = 10.0, shutdown: bool = True) -> dict:
	with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
		sock.settimeout(read_timeout)
		sock.connect(path)
		try:
			sock.sendall(payload)
			if shutdown:
				sock.shutdown(socket.SHUT_WR)
		except (BrokenPipeError, ConnectionResetError):
			pass
		data = protocol.read_reply_line(sock)
	return json.loads(data.split(b"\n")[0])


def test_ping_status_refresh_and_socket_mode(start_daemon):
	daemon = start_daemon()
	pong = daemon.request("ping")
	assert pong.ok and pong.message == "pong" and pong.data["pid"] == daemon.process.pid
	assert stat.S_IMODE(os.stat(daemon.socket_path).st_mode) == 0o660
	status = daemon.request("status")
	assert status.ok and SITE in status.data["sites"] and "internal_queue" in status.data
	before = status.data["counters"]["refreshes"]
	assert daemon.request("refresh").ok
	wait_for(lambda: daemon.request("status").data["counters"]["refreshes"] > before, what="refresh to run")


def test_requests_for_unknown_sites_or_without_content_are_refused(start_daemon):
	daemon = start_daemon()
	reply = daemon.request("create_task_schedule", "TS-1", "other.site")
	assert not reply.ok and "unknown site 'other.site'" in reply.message
	reply = daemon.request("cancel_task_schedule", None, SITE)
	assert not reply.ok and "needs 'request_content'" in reply.message


BAD_REQUESTS = [
	(b"this is not json\n", "not valid JSON"),
	(b"[1, 2, 3]\n", "must be a JSON object"),
	(b'{"request_type": 42}\n', "'request_type' must be a string"),
	(b'{"request_type": "explode"}\n', "unknown request_type 'explode'"),
	(b'{"request_type": "ping", "extra": 1}\n', "unknown field 'extra'"),
	(
		b'{"request_type": "create_task_schedule", "request_content": ["x"]}\n',
		"'request_content' must be a string",
	),
	(b'{"request_type": "ping", "site": 7}\n', "'site' must be a non-empty string"),
	(b"\xff\xfe\x00binary\n", "not UTF-8"),
	(b'{"request_type": "ping\x00"}\n', "NUL byte"),
	(b"\n", "empty request"),
	(b"", "empty request"),
]


def test_malformed_binary_and_empty_requests_get_specific_refusals(start_daemon):
	daemon = start_daemon()
	for payload, reason in BAD_REQUESTS:
		reply = raw_exchange(daemon.socket_path, payload)
		assert reply["ok"] is False and reason in reply["message"], (payload, reply)
	assert daemon.request("ping").ok
	assert daemon.request("status").data["counters"]["socket_errors"] >= len(BAD_REQUESTS)


def test_oversized_request_is_refused_and_daemon_keeps_serving(start_daemon):
	daemon = start_daemon()
	big = b'{"request_type": "ping", "request_content": "' + b"x" * (1024 * 1024) + b'"}\n'
	reply = raw_exchange(daemon.socket_path, big)
	assert reply == {"ok": False, "message": "request exceeds 65536 bytes"}
	assert daemon.request("ping").ok


def test_slow_half_sent_request_times_out_without_blocking_others(start_daemon):
	daemon = start_daemon()
	results = {}

	def slow():
		results["slow"] = raw_exchange(daemon.socket_path, b'{"request_type": "pi', shutdown=False)

	thread = threading.Thread(target=slow)
	thread.start()
	time.sleep(0.3)
	assert daemon.request("ping").ok  # served while the slow client holds its connection
	thread.join(15)
	# (the deadline is the daemon's: its refusal names it; how long it took is not asserted)
	assert results["slow"]["ok"] is False and "not completed within 5 s" in results["slow"]["message"]


def test_second_daemon_refuses_to_hijack_a_live_socket(start_daemon):
	first = start_daemon("first")
	second = start_daemon("second", wait=False)
	code = second.process.proc.wait(20)
	assert code == 3
	assert "another BTU scheduler daemon already answers" in second.output()
	assert first.request("ping").ok


def test_stale_socket_file_is_replaced(start_daemon, daemon_config):
	stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	stale.bind(daemon_config.socket_path)
	stale.close()  # the file stays, nobody listens
	daemon = start_daemon()
	assert daemon.request("ping").ok
	assert "event=stale_socket_removed" in daemon.output()


def test_client_reports_a_down_daemon_cleanly(workdir):
	reply = protocol.ping(os.path.join(workdir, "nobody.sock"), timeout=0.5)
	assert reply.ok is False and reply.reachable is False and "not running" in reply.message


# --- hostile clients cannot starve the others (issue 14, item 6) ---------------------------------


def socket_log_lines(output: str) -> list[str]:
	"""The daemon's log lines about refused or shed socket clients."""
	events = ("event=socket_request_rejected", "event=socket_requests_rejected", "event=socket_clients_shed")
	return [line for line in output.splitlines() if any(e in line for e in events)]


def logged_counts(output: str) -> int:
	"""Refusals the log accounts for: one per individual line, count=N per aggregated line."""
	total = 0
	for line in socket_log_lines(output):
		if "event=socket_request_rejected " in line:
			total += 1
		else:
			total += int(line.split(" count=", 1)[1].split()[0])
	return total


def test_silent_connections_of_another_process_do_not_starve_requests(start_daemon, site_db, redis_client):
	from btu.contracts.redis_keys import KEYS

	from .socket_attacker import Attacker

	site_db.add_task("BTU-00001", "btu.scheduler_daemon.demo_tasks.record_run")
	site_db.add_schedule("TS-EDIT", "BTU-00001", "0 0 1 1 *")
	daemon = start_daemon()
	wait_for(lambda: redis_client.zscore(KEYS.next_runs(SITE), "TS-EDIT"), what="schedule in Redis")
	# The attack: ~600 connections that never send a byte, from one local process.
	attacker = Attacker(daemon.socket_path, connections=600, mode="hold", seconds=8)
	try:
		replies = [protocol.ping(daemon.socket_path, timeout=2.0) for _ in range(20)]
		assert all(r.ok for r in replies), [r.message for r in replies if not r.ok]
		status = protocol.status(daemon.socket_path, timeout=2.0)
		assert status.ok, status.message
		site_db.update_schedule("TS-EDIT", cron_string="0 0 2 1 *")
		edit = protocol.create_task_schedule(daemon.socket_path, "TS-EDIT", SITE, timeout=2.0)
		assert edit.ok, edit.message
		wait_for(
			lambda: b'"0 0 2 1 *"' in (redis_client.hget(KEYS.specs(SITE), "TS-EDIT") or b""),
			what="the edit made during the attack in Redis",
		)
		result = attacker.finish()
	finally:
		attacker.stop()
	# Every silent connection was held (a few KiB each) and told after 5 s; none was left unanswered.
	assert result["opened"] == 600 and result["timeout"] == 600, result
	# Logged as a few lines and aggregated counts, not one line per connection.
	output = daemon.output()
	wait_for(lambda: logged_counts(daemon.output()) >= 600, 15, what="the aggregated lines")
	output = daemon.output()
	assert logged_counts(output) == 600, socket_log_lines(output)
	assert len(socket_log_lines(output)) < 600 / 10, socket_log_lines(output)
	assert "event=socket_requests_rejected" in output


def test_connections_reopened_as_soon_as_closed_do_not_starve_requests(start_daemon):
	from .socket_attacker import Attacker

	daemon = start_daemon()
	# More targets than the daemon holds (8,192), spread over 40 processes, each reopened as soon as
	# the daemon closes it: the newest of the biggest holders are refused, others are still read.
	attacker = Attacker(daemon.socket_path, connections=9000, processes=40, mode="reconnect", seconds=300)
	try:
		replies = []
		for _ in range(20):
			replies.append(protocol.ping(daemon.socket_path, timeout=2.0))
			time.sleep(0.05)
		assert attacker.running()  # the pings above were all sent under attack
		result = attacker.finish(now=True)
	finally:
		attacker.stop()
	assert all(r.ok for r in replies), [r.message for r in replies if not r.ok]
	assert result["opened"] > 9000 and result["busy"] > 0 and not result.get("children_failed"), result
	assert daemon.request("ping").ok

	def shed() -> list[str]:
		return [line for line in socket_log_lines(daemon.output()) if "event=socket_clients_shed" in line]

	wait_for(shed, 15, what="the aggregated socket_clients_shed line")
	assert "connection limit" in " ".join(shed()) and "max_connections=8192" in daemon.output()
	assert len(socket_log_lines(daemon.output())) < result["busy"] / 10


def test_an_unknown_request_type_is_never_taken_for_a_cancel(daemon_config, redis_client, site_db):
	"""parse_request refuses unknown types; the daemon's dispatch must not fall through to a cancel."""
	from btu.contracts.protocol import Request
	from btu.scheduler_daemon.config import load_config
	from btu.scheduler_daemon.daemon import Daemon

	daemon = Daemon(load_config(config_file=daemon_config.path))
	try:
		reply = json.loads(daemon.handle(Request("cancel_everything", "TS-1", SITE)))
		assert reply["ok"] is False and "'cancel_everything' is not handled" in reply["message"]
		assert len(daemon.ctx.queue) == 0
		reply = json.loads(daemon.handle(Request("cancel_task_schedule", "TS-1", SITE)))
		assert reply["ok"] is True and daemon.ctx.queue.get_parts(1, 0, 0, 0) == [
			[((SITE, "TS-1"), ("cancel", None))]
		]
	finally:
		daemon.ctx.store.close()
