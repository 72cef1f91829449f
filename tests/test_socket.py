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
		started = time.monotonic()
		results["slow"] = raw_exchange(daemon.socket_path, b'{"request_type": "pi', shutdown=False)
		results["slow_s"] = time.monotonic() - started

	thread = threading.Thread(target=slow)
	thread.start()
	time.sleep(0.3)
	assert daemon.request("ping").ok  # served while the slow client holds its connection
	thread.join(15)
	assert results["slow"]["ok"] is False and "not completed within 5 s" in results["slow"]["message"]
	assert 4.5 <= results["slow_s"] < 10


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
