"""Talk to the BTU scheduler daemon over its Unix domain socket (frappe-free).

One JSON object per line each way. Every call returns a DaemonReply and never raises
because the daemon is down: the Desk must keep working without it.
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
MAX_MESSAGE_BYTES = 64 * 1024


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
        return os.path.join(os.path.abspath(bench_path), "config", SOCKET_FILE_NAME)
    return DEFAULT_SOCKET_PATH


def read_reply_line(sock: socket.socket, limit: int = 16 * MAX_MESSAGE_BYTES) -> bytes:
    """Bytes read until the first newline, the end of the stream or ``limit`` bytes (the daemon
    answers each request with one JSON line)."""
    data = b""
    while b"\n" not in data and len(data) <= limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


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
            sock.connect(socket_path)
            sock.sendall(payload)
            buffer = read_reply_line(sock)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        return DaemonReply(False, f"BTU scheduler daemon is not running at {socket_path} ({exc.strerror}).",
                           reachable=False, elapsed_ms=elapsed())
    except socket.timeout:
        return DaemonReply(False, f"BTU scheduler daemon at {socket_path} did not answer within {timeout} s.",
                           reachable=False, elapsed_ms=elapsed())
    except OSError as exc:
        return DaemonReply(False, f"Cannot reach the BTU scheduler daemon at {socket_path}: {exc}.",
                           reachable=False, elapsed_ms=elapsed())
    line = buffer.split(b"\n", 1)[0]
    try:
        reply = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return DaemonReply(False, f"The daemon at {socket_path} sent an unreadable reply.", elapsed_ms=elapsed())
    if not isinstance(reply, dict):
        return DaemonReply(False, f"The daemon at {socket_path} sent an unexpected reply.", elapsed_ms=elapsed())
    ok = bool(reply.pop("ok", False))
    message = str(reply.pop("message", ""))
    return DaemonReply(ok, message, reply, True, elapsed())


def ping(socket_path: str, timeout: float = 2.0) -> DaemonReply:
    return send_request(socket_path, "ping", timeout=timeout)


def status(socket_path: str, timeout: float = 2.0) -> DaemonReply:
    return send_request(socket_path, "status", timeout=timeout)


def refresh(socket_path: str, site: str | None = None, timeout: float = 2.0) -> DaemonReply:
    return send_request(socket_path, "refresh", site=site, timeout=timeout)


def create_task_schedule(socket_path: str, name: str, site: str | None, timeout: float = 2.0) -> DaemonReply:
    return send_request(socket_path, "create_task_schedule", name, site, timeout)


def cancel_task_schedule(socket_path: str, name: str, site: str | None, timeout: float = 2.0) -> DaemonReply:
    return send_request(socket_path, "cancel_task_schedule", name, site, timeout)
