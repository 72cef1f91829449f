"""Socket listener: accept requests on the Unix domain socket and hand them to the daemon."""

from __future__ import annotations

import errno
import grp
import logging
import os
import socket
import stat
import threading
import time
from typing import Callable

from btu.contracts.protocol import (
	MAX_REQUEST_BYTES,
	REQUEST_SECONDS,
	ProtocolError,
	Request,
	encode_reply,
	parse_request,
	ping,
)

from .logutil import log_event

log = logging.getLogger("btu.socket")
MAX_CLIENTS = 256


class SocketInUse(Exception):
	"""Another live daemon answers on the socket path, or the path is not ours to replace."""


def prepare_path(path: str) -> None:
	"""Remove a stale socket file; refuse when a live daemon answers or the file is not a socket."""
	if not os.path.lexists(path):
		os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
		return
	if not stat.S_ISSOCK(os.lstat(path).st_mode):
		raise SocketInUse(f"{path} exists and is not a socket; refusing to replace it")
	reply = ping(path, timeout=1.0)
	if reply.reachable:
		raise SocketInUse(
			f"another BTU scheduler daemon already answers on {path} (pid {reply.data.get('pid')})"
		)
	os.unlink(path)
	log_event(log, logging.INFO, "stale_socket_removed", path=path)


class SocketServer:
	def __init__(
		self, path: str, group: str | None, handler: Callable[[Request], bytes], on_error: Callable[[], None]
	) -> None:
		self.path = path
		self.group = group
		self.handler = handler
		self.on_error = on_error
		self.slots = threading.BoundedSemaphore(MAX_CLIENTS)
		self.sock: socket.socket | None = None
		self._inode: int | None = None

	def bind(self) -> None:
		prepare_path(self.path)
		gid = None
		if self.group:
			try:
				gid = grp.getgrnam(self.group).gr_gid
			except KeyError:
				raise SocketInUse(f"socket_group {self.group!r} is not a group on this machine") from None
		sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		old_umask = os.umask(0o117)
		try:
			sock.bind(self.path)
		finally:
			os.umask(old_umask)
		os.chmod(self.path, 0o660)
		if gid is not None:
			os.chown(self.path, -1, gid)
		sock.listen(512)
		sock.settimeout(0.2)
		self.sock = sock
		self._inode = os.stat(self.path).st_ino
		log_event(log, logging.INFO, "socket_listening", path=self.path, mode="0660", group=self.group)

	def serve(self, stop: threading.Event) -> None:
		assert self.sock is not None
		while not stop.is_set():
			try:
				conn, _ = self.sock.accept()
			except socket.timeout:
				continue
			except OSError as exc:
				if stop.is_set():
					break
				log_event(log, logging.ERROR, "socket_accept_failed", error=str(exc))
				time.sleep(0.1)
				continue
			if not self.slots.acquire(blocking=False):
				self._reply_and_close(
					conn, encode_reply(False, f"daemon busy: {MAX_CLIENTS} requests in progress; retry")
				)
				self.on_error()
				continue
			threading.Thread(
				target=self._serve_client, args=(conn,), name="btu-socket-client", daemon=True
			).start()
		self.close()

	def close(self) -> None:
		if self.sock is not None:
			try:
				self.sock.close()
			finally:
				self.sock = None
		try:
			if self._inode is not None and os.stat(self.path).st_ino == self._inode:
				os.unlink(self.path)
		except FileNotFoundError:
			pass

	def _serve_client(self, conn: socket.socket) -> None:
		try:
			line, problem = self._read_line(conn)
			if problem:
				self.on_error()
				log_event(log, logging.WARNING, "socket_request_rejected", reason=problem)
				self._reply_and_close(conn, encode_reply(False, problem))
				return
			try:
				request = parse_request(line)
			except ProtocolError as exc:
				self.on_error()
				log_event(log, logging.WARNING, "socket_request_rejected", reason=str(exc))
				self._reply_and_close(conn, encode_reply(False, str(exc)))
				return
			try:
				reply = self.handler(request)
			except Exception as exc:  # noqa: BLE001 - one bad request never harms the daemon
				self.on_error()
				log_event(
					log,
					logging.ERROR,
					"socket_request_failed",
					request_type=request.request_type,
					error=str(exc),
					exc_info=True,
				)
				reply = encode_reply(False, f"internal error while handling {request.request_type}: {exc}")
			self._reply_and_close(conn, reply)
		finally:
			self.slots.release()

	@staticmethod
	def _read_line(conn: socket.socket) -> tuple[bytes, str | None]:
		deadline = time.monotonic() + REQUEST_SECONDS
		buffer = bytearray()
		while True:
			remaining = deadline - time.monotonic()
			if remaining <= 0:
				return (
					b"",
					f"request not completed within {REQUEST_SECONDS:g} s; send one JSON line ending with a newline",
				)
			conn.settimeout(remaining)
			try:
				chunk = conn.recv(65536)
			except socket.timeout:
				continue
			except OSError as exc:
				return b"", f"connection error: {exc}"
			if not chunk:
				if buffer:
					return bytes(buffer), None  # a last line without newline is accepted at EOF
				return b"", "empty request; expected a JSON object on one line"
			newline = chunk.find(b"\n")
			if newline >= 0:
				buffer += chunk[:newline]
				if len(buffer) > MAX_REQUEST_BYTES:
					return b"", f"request exceeds {MAX_REQUEST_BYTES} bytes"
				return bytes(buffer), None
			buffer += chunk
			if len(buffer) > MAX_REQUEST_BYTES:
				return b"", f"request exceeds {MAX_REQUEST_BYTES} bytes"

	@staticmethod
	def _reply_and_close(conn: socket.socket, reply: bytes) -> None:
		try:
			conn.settimeout(2.0)
			conn.sendall(reply)
			conn.shutdown(socket.SHUT_WR)
			# Drain what the client still sends (briefly) so closing does not reset the reply away.
			conn.settimeout(0.2)
			deadline = time.monotonic() + 1.0
			while time.monotonic() < deadline:
				if not conn.recv(65536):
					break
		except OSError as exc:
			if exc.errno not in (None, errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
				log_event(log, logging.DEBUG, "socket_reply_failed", error=str(exc))
		finally:
			conn.close()
