"""A hostile client of the daemon's socket, as its own process(es): silent connections held open,
or reopened as soon as the daemon closes them. Used by the socket tests and bench/socket_flood.py.

    python -m tests.socket_attacker SOCKET --connections 2000 --processes 1 --mode hold --seconds 30

``--processes N`` forks N children (N peers as the daemon sees them: SO_PEERCRED pids), each holding
its share of the connections. The parent prints ``ready opened=<n>`` once every child has opened
its connections, then, after ``--seconds``, one JSON line with what the daemon answered:
``busy`` (shed: "daemon busy ..."), ``timeout`` ("not completed within ..."), ``other`` replies,
``eof`` (closed without a reply), connections ``opened`` and ``connect_failed`` attempts.
Nothing is ever sent on a connection.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import socket
import sys
import time
from collections import Counter


def classify(data: bytes) -> str:
	if not data.strip():
		return "eof"
	if b"daemon busy" in data:
		return "busy"
	if b"not completed within" in data:
		return "timeout"
	return "other"


_stopping: list[int] = []
_children: list[int] = []  # the parent's forked children (empty in a child)


def _on_term(signum, frame) -> None:
	_stopping.append(signum)
	for child in _children:  # the parent passes it on; each child ends its loop and reports
		try:
			os.kill(child, signal.SIGTERM)
		except ProcessLookupError:
			pass


def attack(path: str, count: int, mode: str, deadline: float, ready_fd: int) -> Counter:
	selector = selectors.DefaultSelector()
	stats: Counter = Counter()
	missing = 0

	def open_one() -> bool:
		sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		sock.setblocking(False)
		try:
			sock.connect(path)
		except (BlockingIOError, InterruptedError, ConnectionRefusedError, FileNotFoundError, OSError):
			stats["connect_failed"] += 1  # the listen backlog is full (EAGAIN), or the daemon is gone
			sock.close()
			return False
		selector.register(sock, selectors.EVENT_READ, bytearray())
		stats["opened"] += 1
		return True

	for _ in range(count):
		if not open_one():
			missing += 1
	# Connections refused while opening are retried until all are open (or time is up).
	while missing and time.time() < deadline and not _stopping:
		time.sleep(0.01)
		missing = sum(1 for _ in range(missing) if not open_one())
	os.write(ready_fd, b"r")
	while time.time() < deadline and not _stopping:
		for key, _mask in selector.select(min(0.2, max(0.0, deadline - time.time()))):
			sock = key.fileobj
			try:
				chunk = sock.recv(65536)
			except (BlockingIOError, InterruptedError):
				continue
			except OSError:
				chunk = b""
			if chunk:
				key.data.extend(chunk)
				if b"\n" not in chunk:
					continue
			stats[classify(bytes(key.data))] += 1
			selector.unregister(sock)
			sock.close()
			if mode == "reconnect" and not open_one():
				missing += 1
		if mode == "reconnect" and missing:
			missing = sum(1 for _ in range(missing) if not open_one())
	stats["held_at_end"] = len(selector.get_map())
	for key in list(selector.get_map().values()):
		key.fileobj.close()
	return stats


class Attacker:
	"""Run the attacker as a child process of the caller (stopped by its own pid)."""

	def __init__(
		self, path: str, connections: int, processes: int = 1, mode: str = "hold", seconds: float = 30.0
	) -> None:
		import subprocess
		from pathlib import Path

		repo = str(Path(__file__).resolve().parent.parent)
		self.proc = subprocess.Popen(
			[
				sys.executable,
				"-m",
				"tests.socket_attacker",
				path,
				f"--connections={connections}",
				f"--processes={processes}",
				f"--mode={mode}",
				f"--seconds={seconds}",
			],
			stdout=subprocess.PIPE,
			cwd=repo,
			env={**os.environ, "PYTHONPATH": repo},
			text=True,
			start_new_session=True,  # its own process group: stop() ends the forked children too
		)
		self.seconds = seconds
		self.ready_line = self.proc.stdout.readline().strip()
		if not self.ready_line.startswith("ready"):
			self.proc.kill()
			raise RuntimeError(f"socket attacker did not start: {self.ready_line!r}")

	def running(self) -> bool:
		return self.proc.poll() is None

	def finish(self, now: bool = False) -> dict[str, int]:
		"""Wait for the end of the attack (``now``: end it at once); what the daemon answered."""
		if now and self.running():
			self.proc.terminate()
		out, _ = self.proc.communicate(timeout=(10 if now else self.seconds) + 60)
		lines = [line for line in out.splitlines() if line.startswith("{")]
		return json.loads(lines[-1]) if lines else {}

	def stop(self) -> None:
		if self.proc.poll() is not None:
			return  # it exited normally, after waiting for its children
		try:
			os.killpg(self.proc.pid, signal.SIGKILL)  # the group this Popen started (pgid = its pid)
		except ProcessLookupError:
			pass
		self.proc.wait(10)


def main(argv: list[str] | None = None) -> int:
	parser = argparse.ArgumentParser(
		description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
	)
	parser.add_argument("socket")
	parser.add_argument("--connections", type=int, default=2000)
	parser.add_argument("--processes", type=int, default=1)
	parser.add_argument("--mode", choices=("hold", "reconnect"), default="hold")
	parser.add_argument("--seconds", type=float, default=30.0)
	args = parser.parse_args(argv)
	deadline = time.time() + args.seconds
	signal.signal(signal.SIGTERM, _on_term)  # SIGTERM: end the attack now and report (children too)
	ready_r, ready_w = os.pipe()
	children = []
	for index in range(args.processes):
		share = args.connections // args.processes + (1 if index < args.connections % args.processes else 0)
		out_r, out_w = os.pipe()
		pid = os.fork()
		if pid == 0:  # child
			_children.clear()
			os.close(out_r)
			os.close(ready_r)
			code = 0
			try:
				stats = attack(args.socket, share, args.mode, deadline, ready_w)
				os.write(out_w, json.dumps(stats).encode())
			except BaseException:  # noqa: BLE001 - a child reports nothing rather than a traceback
				code = 1
			finally:
				os._exit(code)
		os.close(out_w)
		children.append((pid, out_r))
		_children.append(pid)
	os.close(ready_w)
	ready = 0
	while ready < len(children):
		chunk = os.read(ready_r, 64)
		if not chunk:
			break
		ready += len(chunk)
	print(f"ready processes={ready}", flush=True)
	total: Counter = Counter()
	for pid, out_r in children:
		data = b""
		while chunk := os.read(out_r, 65536):
			data += chunk
		os.close(out_r)
		os.waitpid(pid, 0)
		if data:
			total.update(json.loads(data))
		else:
			total["children_failed"] += 1
	print(json.dumps(dict(total)), flush=True)
	return 0


if __name__ == "__main__":
	sys.exit(main())
