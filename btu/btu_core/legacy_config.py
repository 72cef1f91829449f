"""Read what an upgrade needs from the original (Rust) BTU daemon's TOML file (frappe-free)."""

from __future__ import annotations

from pathlib import Path

try:
	import tomllib
except ModuleNotFoundError:  # Python 3.10 (Frappe v15 supports it): the same parser, from PyPI
	import tomli as tomllib

from btu.contracts.schedule_rules import TimeZoneError, validate_timezone

ORIGINAL_CONFIG_PATHS = (
	Path("/etc/btu_scheduler/btu_scheduler.toml"),
	Path("/etc/btu_scheduler/.btu_scheduler.toml"),
)
ORIGINAL_SOCKET_PATH = "/tmp/btu_scheduler.sock"


def original_time_zone(paths: tuple[Path, ...] = ORIGINAL_CONFIG_PATHS) -> tuple[str | None, str]:
	"""The original daemon's ``time_zone_string`` and where it came from (or why there is none).

	Returns (zone, explanation); zone is None when no readable file holds a valid IANA name.
	"""
	reasons = []
	for path in paths:
		try:
			data = tomllib.loads(path.read_text(encoding="utf-8"))
		except FileNotFoundError:
			continue
		except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
			reasons.append(f"{path}: unreadable ({exc})")
			continue
		zone = data.get("time_zone_string")
		if not isinstance(zone, str) or not zone.strip():
			reasons.append(f"{path}: no time_zone_string")
			continue
		try:
			validate_timezone(zone)
		except TimeZoneError as exc:
			reasons.append(f"{path}: {exc}")
			continue
		return zone.strip(), f"time_zone_string of {path}"
	return None, "; ".join(reasons) or "no original BTU daemon configuration file found"


def original_socket_path(paths: tuple[Path, ...] = ORIGINAL_CONFIG_PATHS) -> tuple[str | None, Path | None]:
	"""``socket_path`` of the first readable original TOML file that has one, and that file."""
	for path in paths:
		try:
			data = tomllib.loads(path.read_text(encoding="utf-8"))
		except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
			continue
		value = data.get("socket_path")
		if isinstance(value, str) and value.strip():
			return value.strip(), path
	return None, None


# What answers on a socket path: nothing, BTU's own daemon, the original (Rust) daemon, or something else.
NOTHING, BTU_DAEMON, ORIGINAL_DAEMON, SOMETHING_ELSE = "nothing", "btu", "original", "other"


def probe_socket(path: str, timeout: float = 2.0) -> tuple[str, str]:
	"""Send a ping and say who answered: (kind, what it said or why nothing did).

	The original daemon answers a ping with the bare text ``pong``; BTU's with one JSON line.
	"""
	import json
	import socket

	try:
		with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
			sock.settimeout(timeout)
			sock.connect(path)
			sock.sendall(b'{"request_type": "ping", "request_content": ""}\n')
			data = b""
			while len(data) < 65536:
				chunk = sock.recv(4096)
				if not chunk:
					break
				data += chunk
				if b"\n" in data or data.strip() == b"pong":
					break
	except (FileNotFoundError, ConnectionRefusedError) as exc:
		return NOTHING, f"{path}: {exc.strerror}"
	except OSError as exc:
		return NOTHING, f"{path}: {exc}"
	text = data.decode("utf-8", "replace").strip()
	if text == "pong":
		return ORIGINAL_DAEMON, text
	try:
		reply = json.loads(text.splitlines()[0]) if text else None
	except ValueError:
		reply = None
	if isinstance(reply, dict) and "ok" in reply:
		return BTU_DAEMON, str(reply.get("message", ""))
	return SOMETHING_ELSE, text[:200]


# --- BTU Configuration's email settings of the original --------------------------------------

# Fields of the original BTU Configuration that BTU no longer has; their values stay in tabSingles.
ORIGINAL_EMAIL_FIELDS = (
	"send_email_via",
	"email_server",
	"email_server_port",
	"email_auth_username",
	"email_encryption",
	"email_body_is_html",
	"mandrill_from_email_address",
	"environment_name",
)
DEFAULT_SUBJECT_PREFIX = "[BTU]"


def subject_prefix_with_environment(prefix: str | None, environment: str | None) -> str | None:
	"""The subject prefix that keeps the original's ``(<environment_name>)``; None when nothing changes."""
	env = (environment or "").strip()
	if not env:
		return None
	current = (prefix or "").strip() or DEFAULT_SUBJECT_PREFIX
	marker = f"({env})"
	if marker in current:
		return None
	return f"{current} {marker}"


def email_account_values(settings: dict[str, str | None]) -> tuple[dict | None, list[str]]:
	"""An Email Account (outgoing only) equivalent to the original's SMTP settings, and what to tell.

	Returns (values without the password, lines). Values is None when the original did not send by
	SMTP with a server and a login (Mandrill, or nothing set up); the lines then say what to do.
	"""
	via = (settings.get("send_email_via") or "").strip()
	server = (settings.get("email_server") or "").strip()
	login = (settings.get("email_auth_username") or "").strip()
	if via == "Mandrill":
		sender = (settings.get("mandrill_from_email_address") or "").strip() or "<your sender address>"
		return None, [
			"the original sent mail through Mandrill's API (from "
			f"{sender}); BTU sends through a Frappe Email Account: create one in Desk > Email Account with "
			f"Email Address {sender}, SMTP server smtp.mandrillapp.com, port 587, Use TLS, login = your "
			"Mandrill user name and password = a Mandrill API key, Enable Outgoing; then choose it in "
			"BTU Configuration > Email Account"
		]
	if not server or not login:
		if via or server or login:
			return None, [
				f"the original's email settings are incomplete (server {server!r}, login {login!r}); "
				"choose an Email Account in BTU Configuration > Email Account"
			]
		return None, []
	port = (settings.get("email_server_port") or "").strip()
	encryption = (settings.get("email_encryption") or "").strip()
	values = {
		"email_id": login,
		"email_account_name": f"BTU {login}",
		"enable_outgoing": 1,
		"enable_incoming": 0,
		"smtp_server": server,
		"smtp_port": port,
		"use_tls": 1 if encryption == "STARTTLS" else 0,
		"use_ssl_for_outgoing": 1 if encryption == "SSL" else 0,
	}
	return values, [
		f"the original sent mail itself by SMTP ({server}:{port or 'default port'}, login {login}, "
		f"{encryption or 'no encryption'}); BTU sends through a Frappe Email Account"
	]


def merge_recipients(task_rows: list[dict], schedule_rows: list[dict]) -> tuple[list[dict], list[dict]]:
	"""Version 13 sent a scheduled run's mails to its task's recipients and its schedule's, with each
	flag OR-ed. Returns (rows to add to the schedule, schedule rows whose flags to raise)."""
	flags = ("email_on_start", "email_on_success", "email_on_error", "email_on_timeout")
	by_address = {(r.get("email_address") or "").strip().lower(): r for r in schedule_rows}
	added, raised = [], []
	for row in task_rows:
		address = (row.get("email_address") or "").strip()
		if not address:
			continue
		existing = by_address.get(address.lower())
		if existing is None:
			new = {"email_address": address} | {f: 1 if row.get(f) else 0 for f in flags}
			added.append(new)
			by_address[address.lower()] = new
			continue
		changes = {f: 1 for f in flags if row.get(f) and not existing.get(f)}
		if changes and "name" in existing:
			raised.append({"name": existing["name"]} | changes)
		existing.update(changes)
	return added, raised


def run_later_command(site: str, data: dict[str, str]) -> str:
	"""The ``bench execute btu.api.run_function`` line that runs a pending version-13 run-later
	request (a ``btu_scheduler:run_later:*`` hash) the BTU way: once, at its time, in its queue."""
	import json
	import shlex
	from datetime import datetime, timezone

	arguments: object = data.get("arguments") or None
	if isinstance(arguments, str):
		try:
			arguments = json.loads(arguments)
		except ValueError:
			pass  # passed on as text: run_function then says what is wrong with it
	kwargs: dict[str, object] = {"function_path": data.get("path_to_function") or ""}
	if arguments:
		kwargs["arguments"] = arguments
	try:
		when = datetime.fromtimestamp(int(data.get("not_before_timestamp") or 0), timezone.utc)
	except (TypeError, ValueError, OverflowError, OSError):
		when = None
	if when is not None and when > datetime.now(timezone.utc):
		kwargs["at"] = when.isoformat()
	if data.get("target_queue"):
		kwargs["queue"] = data["target_queue"]
	literal = _python_literal(kwargs)
	return f"bench --site {shlex.quote(site)} execute btu.api.run_function --kwargs {shlex.quote(literal)}"


def _python_literal(value: object) -> str:
	"""A Python literal (what ``bench execute --kwargs`` evaluates) in double quotes, easy to read
	inside the shell's single quotes."""
	import json

	if isinstance(value, dict):
		return "{" + ", ".join(f"{_python_literal(k)}: {_python_literal(v)}" for k, v in value.items()) + "}"
	if isinstance(value, list | tuple):
		return "[" + ", ".join(_python_literal(v) for v in value) + "]"
	if isinstance(value, str):
		return json.dumps(value)  # a JSON string is a Python string literal too
	return repr(value)  # numbers, True, False, None
