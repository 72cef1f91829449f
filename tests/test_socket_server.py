"""The socket server's loop on its own (in this process, real Unix sockets, a plain handler): caps per
peer and in total, the bounded buffers, blocking requests off the loop, and the aggregated log."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

import pytest

from btu.contracts import protocol
from btu.contracts.protocol import Request, encode_reply
from btu.scheduler_daemon import socket_server
from btu.scheduler_daemon.socket_server import SocketServer

from .services import wait_for
from .socket_attacker import Attacker


class Served:
	"""A SocketServer serving in a thread of this process; stopped by the test's fixture."""

	def __init__(self, path: str, **limits) -> None:
		self.errors = 0
		self.release = threading.Event()
		self.slow_started = 0
		self.server = SocketServer(path, None, self.handle, self.on_error, **limits)
		self.server.bind()
		self.stop = threading.Event()
		self.thread = threading.Thread(target=self.server.serve, args=(self.stop,), daemon=True)
		self.thread.start()

	def handle(self, request: Request) -> bytes:
		if request.request_type == "status":  # stands for a request that blocks (Redis away)
			self.slow_started += 1
			self.release.wait(30)
		return encode_reply(True, request.request_type, thread=threading.current_thread().name)

	def on_error(self) -> None:
		self.errors += 1

	def close(self) -> None:
		self.release.set()
		self.stop.set()
		self.thread.join(10)
		assert not self.thread.is_alive()


@pytest.fixture
def serve(workdir):
	started: list[Served] = []

	def start(**limits) -> Served:
		served = Served(os.path.join(workdir, f"s{len(started)}.sock"), **limits)
		started.append(served)
		return served

	yield start
	for served in started:
		served.close()


def silent(path: str, count: int) -> list[socket.socket]:
	socks = []
	for _ in range(count):
		sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		sock.settimeout(10)
		sock.connect(path)
		socks.append(sock)
	return socks


def answer(sock: socket.socket) -> dict | None:
	try:
		data = protocol.read_reply_line(sock)
	except OSError:
		return None
	finally:
		sock.close()
	return json.loads(data.split(b"\n")[0]) if data.strip() else None


def test_when_all_connections_are_taken_the_biggest_holder_makes_room_for_others(serve):
	served = serve(max_connections=50, max_per_peer=10_000)
	path = served.server.path
	attacker = Attacker(path, connections=200, mode="hold", seconds=4)
	try:
		# All 50 taken by the attacker: its newer connections are refused, and this process's first
		# connection sheds the attacker's oldest (later ones take the room the earlier left), so it is read.
		for _ in range(10):
			assert protocol.ping(path, timeout=2.0).ok
		assert len(served.server._conns) <= 50
		result = attacker.finish()
	finally:
		attacker.stop()
	assert result["opened"] == 200 and result["busy"] == 150 + 1, result
	assert result["held_at_end"] == 49 and not result.get("other"), result
	wait_for(lambda: not served.server._conns, what="closed connections to be forgotten")
	mine = silent(path, 60)  # alone now: this process fills the 50 and its newest are refused
	answers = [answer(sock) for sock in mine[50:]]
	assert all(a and "daemon busy: 50 connections open; retry" == a["message"] for a in answers), answers
	for sock in mine[:50]:
		sock.close()


def test_a_process_at_its_cap_has_its_new_connections_refused_and_the_others_are_served(serve, workdir):
	served = serve(max_per_peer=16)
	path = served.server.path
	mine = silent(path, 8)  # this process: under its cap, kept
	attacker = Attacker(path, connections=300, mode="hold", seconds=3)
	try:
		assert protocol.ping(path, timeout=2.0).ok
		result = attacker.finish()
	finally:
		attacker.stop()
	assert result["opened"] == 300 and result["busy"] >= 300 - 16, result
	assert result["busy"] + result.get("timeout", 0) + result["held_at_end"] == 300, result
	for sock in mine:
		sock.sendall(b'{"request_type": "ping"}\n')
		reply = answer(sock)
		assert reply and reply["ok"] and reply["message"] == "ping", reply


def test_blocking_requests_run_off_the_loop_and_are_bounded(serve):
	served = serve()
	path = served.server.path
	pending = []
	for _ in range(socket_server.MAX_SLOW + 3):
		sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		sock.settimeout(10)
		sock.connect(path)
		sock.sendall(b'{"request_type": "status"}\n')
		pending.append(sock)
	wait_for(lambda: served.slow_started == socket_server.SLOW_WORKERS, what="the workers to start")
	# The loop still answers while every worker is stuck in a status.
	pong = protocol.ping(path, timeout=2.0)
	assert pong.ok and pong.data["thread"] == served.thread.name  # answered on the loop
	served.release.set()
	answers = [answer(sock) for sock in pending]
	busy = [a for a in answers if a and not a["ok"]]
	done = [a for a in answers if a and a["ok"]]
	assert len(done) == socket_server.MAX_SLOW and len(busy) == 3, answers
	assert all(
		f"daemon busy: {socket_server.MAX_SLOW} status requests in progress" in a["message"] for a in busy
	)
	assert all(a["thread"].startswith("btu-socket-worker") for a in done)


def test_unfinished_requests_hold_a_bounded_number_of_bytes(serve):
	served = serve(max_per_peer=10_000)
	path = served.server.path
	part = b'{"request_type": "ping", "request_content": "' + b"x" * 60_000
	socks = silent(path, 400)  # 400 x 60 KB = 24 MB of unfinished requests offered
	for sock in socks:
		sock.sendall(part)
	assert protocol.ping(path, timeout=2.0).ok
	wait_for(lambda: served.server._buffered <= socket_server.MAX_BUFFERED, what="the buffer cap")
	assert served.server._buffered <= socket_server.MAX_BUFFERED
	answers = [answer(sock) for sock in socks]
	shed = [a for a in answers if a and "too many unfinished requests" in a["message"]]
	timed_out = [a for a in answers if a and "not completed within 5 s" in a["message"]]
	assert shed and len(shed) + len(timed_out) == 400, answers[:3]
	assert served.server._buffered == 0


def test_refusals_are_logged_a_few_lines_then_aggregated(serve, caplog):
	caplog.set_level(logging.INFO, logger="btu.socket")
	served = serve()
	path = served.server.path
	sent = 200
	for _ in range(sent):
		reply = protocol.send_request(path, "explode", timeout=2.0)
		assert not reply.ok and "unknown request_type 'explode'" in reply.message
	served.close()  # the loop's end writes the window's aggregated line
	single = [r for r in caplog.records if "event=socket_request_rejected " in r.getMessage()]
	summed = [r for r in caplog.records if "event=socket_requests_rejected " in r.getMessage()]
	counted = sum(int(r.getMessage().split(" count=")[1].split()[0]) for r in summed)
	assert len(single) + counted == sent and served.errors == sent
	assert single and len(single) < sent / 4 and summed
	assert "reasons=\"unknown request_type 'explode'" in summed[-1].getMessage()
	assert "pid=" in single[0].getMessage() and "uid=" in single[0].getMessage()


def test_stop_ends_the_loop_closes_connections_and_removes_the_socket_file(serve):
	served = serve()
	path = served.server.path
	held = silent(path, 5)
	assert protocol.ping(path, timeout=2.0).ok
	served.close()
	assert not os.path.exists(path)
	assert all(answer(sock) is None for sock in held)  # closed without a reply: nothing was asked


def test_a_request_split_over_many_writes_and_one_at_eof_are_read(serve):
	served = serve()
	path = served.server.path
	with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
		sock.settimeout(5)
		sock.connect(path)
		for byte in b'{"request_type": "ping"}\n':
			sock.sendall(bytes([byte]))
			time.sleep(0.001)
		assert json.loads(protocol.read_reply_line(sock))["message"] == "ping"
	with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
		sock.settimeout(5)
		sock.connect(path)
		sock.sendall(b'{"request_type": "refresh"}')  # no newline: complete at EOF
		sock.shutdown(socket.SHUT_WR)
		assert json.loads(protocol.read_reply_line(sock))["message"] == "refresh"
