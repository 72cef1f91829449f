"""The socket protocol between Desk (or the CLI) and the daemon, both halves.

A stream Unix socket; the client sends one JSON object on one line, the daemon answers
with one JSON object on one line and closes (docs/architecture.md, "Socket protocol";
every request type: docs/socket-protocol.md). The server half (``parse_request``,
``encode_reply``) is the daemon's; the client half (``send_request`` and friends) returns
a DaemonReply and never raises because the daemon is down: the Desk must keep working
without it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

DEFAULT_SOCKET_PATH = "/tmp/btu_scheduler.sock"
SOCKET_FILE_NAME = "btu_scheduler.sock"
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes on Linux, including the NUL

# --- server half: what the daemon accepts and answers ------------------------------------
MAX_REQUEST_BYTES = 64 * 1024  # also the most a client sends
REQUEST_SECONDS = 5.0
REQUEST_TYPES = ("ping", "create_task_schedule", "cancel_task_schedule", "status", "refresh")
NEEDS_CONTENT = ("create_task_schedule", "cancel_task_schedule")
MAX_NAME_LENGTH = 140


class ProtocolError(ValueError):
	"""A request the daemon refuses; the message is sent back as the reply's reason."""


@dataclass(frozen=True)
class Request:
	request_type: str
	content: str | None
	site: str | None


def parse_request(line: bytes) -> Request:
	try:
		text = line.decode("utf-8")
	except UnicodeDecodeError as exc:
		raise ProtocolError(f"request is not UTF-8 (bad byte at offset {exc.start})") from None
	if "\x00" in text:
		raise ProtocolError("request contains a NUL byte")
	if not text.strip():
		raise ProtocolError("empty request; expected a JSON object on one line")
	try:
		data = json.loads(text)
	except json.JSONDecodeError as exc:
		raise ProtocolError(f"request is not valid JSON: {exc.msg} at column {exc.colno}") from None
	except RecursionError:
		raise ProtocolError("request is not valid JSON: arrays or objects nested too deeply") from None
	except ValueError as exc:  # e.g. a number with more digits than Python converts
		raise ProtocolError(f"request is not valid JSON: {str(exc).split(':')[0]}") from None
	if not isinstance(data, dict):
		raise ProtocolError(f"request must be a JSON object, not a JSON {type(data).__name__}")
	unknown = sorted(set(data) - {"request_type", "request_content", "site"})
	if unknown:
		raise ProtocolError(f"unknown field {unknown[0]!r}; expected request_type, request_content, site")
	request_type = data.get("request_type")
	if not isinstance(request_type, str):
		raise ProtocolError("'request_type' must be a string, one of " + ", ".join(REQUEST_TYPES))
	if request_type not in REQUEST_TYPES:
		raise ProtocolError(
			f"unknown request_type {request_type[:60]!r}; expected one of " + ", ".join(REQUEST_TYPES)
		)
	content = data.get("request_content")
	if content is not None and not isinstance(content, str):
		raise ProtocolError(f"'request_content' must be a string, not {type(content).__name__}")
	if request_type in NEEDS_CONTENT:
		if not content or not content.strip():
			raise ProtocolError(f"'{request_type}' needs 'request_content': the schedule's name")
		content = content.strip()
		if len(content) > MAX_NAME_LENGTH or any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in content):
			# (a lone surrogate from a "\ud800" escape is no text: SQL and the logs cannot encode it)
			raise ProtocolError(
				f"'request_content' is not a schedule name (at most {MAX_NAME_LENGTH} printable characters)"
			)
	site = data.get("site")
	if site is not None and (not isinstance(site, str) or not site.strip() or len(site) > 255):
		raise ProtocolError("'site' must be a non-empty string naming a site")
	return Request(request_type, content, site.strip() if isinstance(site, str) else None)


def encode_reply(ok: bool, message: str, **extra: Any) -> bytes:
	return (json.dumps({"ok": ok, "message": message, **extra}, default=str) + "\n").encode("utf-8")


# --- client half ----------------------------------------------------------------------------


@dataclass
class DaemonReply:
	ok: bool
	message: str
	data: dict[str, Any] = field(default_factory=dict)
	reachable: bool = True
	elapsed_ms: float = 0.0


def default_socket_path(bench_path: str | None) -> str:
	"""``<bench>/config/btu_scheduler.sock`` inside a bench, else /tmp/btu_scheduler.sock."""
	if bench_path:
		return os.path.join(os.path.realpath(bench_path), "config", SOCKET_FILE_NAME)
	return DEFAULT_SOCKET_PATH


def read_reply_line(sock: socket.socket, limit: int = 16 * MAX_REQUEST_BYTES) -> bytes:
	"""Bytes read until the first newline, the end of the stream or ``limit`` bytes (the daemon
	answers each request with one JSON line)."""
	data = b""
	while b"\n" not in data and len(data) <= limit:
		chunk = sock.recv(65536)
		if not chunk:
			break
		data += chunk
	return data


def _connect(sock: socket.socket, path: str, deadline: float) -> None:
	"""Connect, waiting while the daemon's listen backlog is full: with a timeout set, a Unix socket's
	connect fails at once with EAGAIN then, instead of waiting like a blocking one."""
	while True:
		try:
			sock.connect(path)
			return
		except BlockingIOError:
			if time.monotonic() >= deadline:
				raise socket.timeout("the daemon's listen backlog stayed full") from None
			time.sleep(0.005)


def send_request(
	socket_path: str,
	request_type: str,
	content: str | None = None,
	site: str | None = None,
	timeout: float = 2.0,
) -> DaemonReply:
	"""Send one request and wait for its one-line reply."""
	request: dict[str, Any] = {"request_type": request_type}
	if content is not None:
		request["request_content"] = content
	if site is not None:
		request["site"] = site
	started = time.monotonic()
	payload = (json.dumps(request) + "\n").encode("utf-8")

	def elapsed() -> float:
		return round((time.monotonic() - started) * 1000, 3)

	try:
		with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
			sock.settimeout(timeout)
			_connect(sock, socket_path, started + timeout)
			sock.sendall(payload)
			buffer = read_reply_line(sock)
	except (FileNotFoundError, ConnectionRefusedError) as exc:
		return DaemonReply(
			False,
			f"BTU scheduler daemon is not running at {socket_path} ({exc.strerror}).",
			reachable=False,
			elapsed_ms=elapsed(),
		)
	except socket.timeout:
		return DaemonReply(
			False,
			f"BTU scheduler daemon at {socket_path} did not answer within {timeout} s.",
			reachable=False,
			elapsed_ms=elapsed(),
		)
	except OSError as exc:
		return DaemonReply(
			False,
			f"Cannot reach the BTU scheduler daemon at {socket_path}: {exc}.",
			reachable=False,
			elapsed_ms=elapsed(),
		)
	line = buffer.split(b"\n", 1)[0]
	try:
		reply = json.loads(line.decode("utf-8"))
	except (UnicodeDecodeError, json.JSONDecodeError):
		return DaemonReply(
			False, f"The daemon at {socket_path} sent an unreadable reply.", elapsed_ms=elapsed()
		)
	if not isinstance(reply, dict):
		return DaemonReply(
			False, f"The daemon at {socket_path} sent an unexpected reply.", elapsed_ms=elapsed()
		)
	ok = bool(reply.pop("ok", False))
	message = str(reply.pop("message", ""))
	return DaemonReply(ok, message, reply, True, elapsed())


def ping(socket_path: str, timeout: float = 2.0) -> DaemonReply:
	return send_request(socket_path, "ping", timeout=timeout)


def status(socket_path: str, timeout: float = 2.0, site: str | None = None) -> DaemonReply:
	"""The daemon's state: a summary per site, or ``site``'s details (next runs, invalid schedules)."""
	return send_request(socket_path, "status", site=site, timeout=timeout)


def refresh(socket_path: str, site: str | None = None, timeout: float = 2.0) -> DaemonReply:
	return send_request(socket_path, "refresh", site=site, timeout=timeout)


def create_task_schedule(socket_path: str, name: str, site: str | None, timeout: float = 2.0) -> DaemonReply:
	return send_request(socket_path, "create_task_schedule", name, site, timeout)


def cancel_task_schedule(socket_path: str, name: str, site: str | None, timeout: float = 2.0) -> DaemonReply:
	return send_request(socket_path, "cancel_task_schedule", name, site, timeout)
