"""The socket protocol: one JSON object per line each way (see DESIGN.md "Socket protocol")."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_REQUEST_BYTES = 64 * 1024
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
        raise ProtocolError(f"unknown request_type {request_type[:60]!r}; expected one of " + ", ".join(REQUEST_TYPES))
    content = data.get("request_content")
    if content is not None and not isinstance(content, str):
        raise ProtocolError(f"'request_content' must be a string, not {type(content).__name__}")
    if request_type in NEEDS_CONTENT:
        if not content or not content.strip():
            raise ProtocolError(f"'{request_type}' needs 'request_content': the schedule's name")
        content = content.strip()
        if len(content) > MAX_NAME_LENGTH or any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in content):
            # (a lone surrogate from a "\ud800" escape is no text: SQL and the logs cannot encode it)
            raise ProtocolError(f"'request_content' is not a schedule name (at most {MAX_NAME_LENGTH} printable characters)")
    site = data.get("site")
    if site is not None and (not isinstance(site, str) or not site.strip() or len(site) > 255):
        raise ProtocolError("'site' must be a non-empty string naming a site")
    return Request(request_type, content, site.strip() if isinstance(site, str) else None)


def encode_reply(ok: bool, message: str, **extra: Any) -> bytes:
    return (json.dumps({"ok": ok, "message": message, **extra}, default=str) + "\n").encode("utf-8")
