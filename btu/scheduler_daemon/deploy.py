"""Run the daemon the way a bench runs its own processes: a Procfile line, a supervisor program, a systemd unit.

Each writer is idempotent: run it twice and the second run changes nothing. A file (or
Procfile line) that exists with different content is kept unless ``force`` is given, so a
hand-edited configuration is never overwritten by accident. Nothing here imports frappe.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
from dataclasses import dataclass

from .config import is_bench

PROCESS_NAME = "btu_scheduler"  # Procfile process name and log file stem
LOG_FILE = f"logs/{PROCESS_NAME}.log"
ERROR_LOG_FILE = f"logs/{PROCESS_NAME}.error.log"
# The daemon's event log goes to stdout (-> <name>.log); stderr (-> <name>.error.log) only gets what
# happens outside the event log: a refusal to start, a crash.
RUN_ARGS = "btu-scheduler run --log-to stdout"
SUPERVISOR_FILE = "btu_scheduler.supervisor.conf"
PROCFILE_LINE_RE = re.compile(rf"^\s*{PROCESS_NAME}\s*:")
OTHER_DAEMON_RE = re.compile(r"btu[-_]scheduler(?!\.sock)|btu\.scheduler_daemon")


class DeployError(Exception):
	"""A set-up step cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Outcome:
	path: str
	status: str  # "created", "added", "unchanged", "updated", "kept"
	detail: str = ""

	@property
	def changed(self) -> bool:
		return self.status in ("created", "added", "updated")


def resolve_bench(path: str | None) -> str:
	"""The bench folder: ``path``, else the current directory (or its parent when run from ``sites``)."""
	if path:
		bench = os.path.abspath(path)
		if not is_bench(bench):
			raise DeployError(
				f"{bench} is not a bench (expected 'apps' and 'sites' folders in it); "
				"pass --bench with the path of your frappe-bench folder."
			)
		return bench
	here = os.getcwd()
	for candidate in (here, os.path.dirname(here)):
		if is_bench(candidate):
			return candidate
	raise DeployError(
		f"the current directory {here} is not a bench; run this from your frappe-bench folder "
		"or pass --bench PATH."
	)


def bench_name(bench: str) -> str:
	"""What bench calls the bench in supervisor/systemd names: the folder's name."""
	return os.path.basename(os.path.abspath(bench))


def program_name(bench: str) -> str:
	return f"{bench_name(bench)}-btu-scheduler"


def bench_owner(bench: str) -> str:
	"""The user the bench belongs to (the owner of its folder): production processes run as that user."""
	uid = os.stat(bench).st_uid
	try:
		return pwd.getpwuid(uid).pw_name
	except KeyError:
		return str(uid)


def primary_group(user: str) -> str:
	try:
		return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
	except KeyError:
		return user


def daemon_command(bench: str, direct: bool = False) -> tuple[str, str]:
	"""The absolute command that runs the daemon for a production process manager, and how it was chosen.

	Like bench's own supervisor/systemd files: the ``bench`` executable found on PATH. With
	``direct`` (or when no ``bench`` is on PATH) the bench's Python runs the daemon module
	itself: it starts faster and never loads frappe.
	"""
	if not direct:
		found = shutil.which("bench")
		if found:
			return f"{os.path.abspath(found)} {RUN_ARGS}", "bench executable on PATH"
	python = os.path.join(bench, "env", "bin", "python")
	how = "--direct" if direct else "no 'bench' executable on PATH; using the bench's Python"
	return f"{python} -m btu.scheduler_daemon run --bench {bench} --log-to stdout", how


# --- Procfile (development: bench start) ----------------------------------------------------------


def procfile_line() -> str:
	"""Same shape as bench's worker lines: ``worker: bench worker 1>> logs/worker.log 2>> logs/worker.error.log``."""
	return f"{PROCESS_NAME}: bench {RUN_ARGS} 1>> {LOG_FILE} 2>> {ERROR_LOG_FILE}"


def setup_procfile(bench: str, force: bool = False) -> Outcome:
	"""Add the daemon's line to ``<bench>/Procfile`` once."""
	path = os.path.join(bench, "Procfile")
	if not os.path.isfile(path):
		raise DeployError(
			f"{path} does not exist; create it with 'bench setup procfile' first, then run this again."
		)
	with open(path, encoding="utf-8") as handle:
		text = handle.read()
	lines = text.splitlines()
	wanted = procfile_line()
	ours = [i for i, line in enumerate(lines) if PROCFILE_LINE_RE.match(line)]
	if ours:
		index = ours[0]
		if lines[index].strip() == wanted and len(ours) == 1:
			return Outcome(path, "unchanged", f"line already present: {wanted}")
		if not force:
			return Outcome(
				path,
				"kept",
				f"a different '{PROCESS_NAME}:' line is already there and was kept: "
				f"{lines[index].strip()!r}; use --force to replace it with {wanted!r}",
			)
		lines[index] = wanted
		lines = [line for i, line in enumerate(lines) if i not in ours[1:]]
		status = "updated"
	else:
		others = [
			line.strip()
			for line in lines
			if OTHER_DAEMON_RE.search(line) and not line.lstrip().startswith("#")
		]
		if others and not force:
			return Outcome(
				path,
				"kept",
				f"another line already runs the BTU daemon: {others[0]!r}; a second "
				"daemon would only stand by. Remove it, or use --force to add ours anyway",
			)
		lines.append(wanted)
		status = "added"
	_write_atomic(path, "\n".join(lines) + "\n", os.stat(path).st_mode & 0o777)
	return Outcome(path, status, wanted)


# --- supervisor (production) ----------------------------------------------------------------------


def supervisor_conf(bench: str, user: str, command: str) -> str:
	name = program_name(bench)
	logs = os.path.join(bench, "logs")

	def esc(value: str) -> str:  # supervisor expands %(name)s: a literal % is written %%
		return value.replace("%", "%%")

	return "\n".join(
		[
			f"; BTU scheduler daemon of bench {bench_name(bench)}: one process per bench, serving every site.",
			"; Written by 'bench btu-scheduler setup-supervisor'; run it again after moving the bench.",
			f"; Enable: sudo ln -sf {bench}/config/{SUPERVISOR_FILE} {supervisor_include_path(bench)}",
			";         sudo supervisorctl reread && sudo supervisorctl update",
			"",
			f"[program:{name}]",
			f"command={esc(command)}",
			"priority=4",
			"autostart=true",
			"autorestart=true",
			"startsecs=5",
			"startretries=20",
			"stopsignal=TERM",
			"stopwaitsecs=15",
			"stopasgroup=true",
			"killasgroup=true",
			f"stdout_logfile={esc(os.path.join(logs, PROCESS_NAME + '.log'))}",
			f"stderr_logfile={esc(os.path.join(logs, PROCESS_NAME + '.error.log'))}",
			f"user={user}",
			f"directory={esc(bench)}",
			"",
		]
	)


def supervisor_include_path(bench: str) -> str:
	"""Where supervisord reads extra programs: Debian/Ubuntu conf.d/*.conf, RHEL supervisord.d/*.ini."""
	if not os.path.isdir("/etc/supervisor/conf.d") and os.path.isdir("/etc/supervisord.d"):
		return f"/etc/supervisord.d/{program_name(bench)}.ini"
	return f"/etc/supervisor/conf.d/{program_name(bench)}.conf"


def setup_supervisor(
	bench: str, user: str | None = None, direct: bool = False, force: bool = False
) -> Outcome:
	user = user or bench_owner(bench)
	command, _how = daemon_command(bench, direct)
	path = os.path.join(bench, "config", SUPERVISOR_FILE)
	return write_file(path, supervisor_conf(bench, user, command), force)


def supervisor_instructions(bench: str) -> list[str]:
	name = program_name(bench)
	return [
		f"sudo ln -sf {os.path.join(bench, 'config', SUPERVISOR_FILE)} {supervisor_include_path(bench)}",
		"sudo supervisorctl reread && sudo supervisorctl update",
		f"sudo supervisorctl status {name}    # then: bench btu-scheduler status",
	]


# --- systemd (production) -------------------------------------------------------------------------


def systemd_unit_name(bench: str) -> str:
	return f"{program_name(bench)}.service"


def systemd_unit(bench: str, user: str, group: str, command: str) -> str:
	name = bench_name(bench)
	logs = os.path.join(bench, "logs")

	def esc(value: str) -> str:  # systemd expands %-specifiers: a literal % is written %%
		return value.replace("%", "%%")

	return "\n".join(
		[
			"# BTU scheduler daemon: one process per bench, serving every site.",
			"# Written by 'bench btu-scheduler setup-systemd'; run it again after moving the bench.",
			"[Unit]",
			f"Description=BTU scheduler daemon of bench {name} ({name}-btu-scheduler)",
			"Wants=network-online.target",
			"After=network-online.target",
			f"PartOf={name}-workers.target",
			"",
			"[Service]",
			f"User={user}",
			f"Group={group}",
			"Restart=always",
			"RestartSec=5",
			f"ExecStart={esc(command)}",
			"KillSignal=SIGTERM",
			"TimeoutStopSec=15",
			f"StandardOutput=append:{esc(os.path.join(logs, PROCESS_NAME + '.log'))}",
			f"StandardError=append:{esc(os.path.join(logs, PROCESS_NAME + '.error.log'))}",
			f"WorkingDirectory={esc(bench)}",
			"",
			"[Install]",
			# Enabled, it starts at boot and with bench's workers target ('bench restart' stops and starts
			# that target: PartOf carries the stop, WantedBy the start).
			f"WantedBy=multi-user.target {name}-workers.target",
			"",
		]
	)


def setup_systemd(bench: str, user: str | None = None, direct: bool = False, force: bool = False) -> Outcome:
	user = user or bench_owner(bench)
	command, _how = daemon_command(bench, direct)
	path = os.path.join(bench, "config", "systemd", systemd_unit_name(bench))
	return write_file(path, systemd_unit(bench, user, primary_group(user), command), force)


def systemd_instructions(bench: str) -> list[str]:
	unit = systemd_unit_name(bench)
	return [
		f"sudo ln -sf {os.path.join(bench, 'config', 'systemd', unit)} /etc/systemd/system/{unit}",
		f"sudo systemctl daemon-reload && sudo systemctl enable --now {unit}",
		f"sudo systemctl status {unit}    # then: bench btu-scheduler status",
	]


# --- files ----------------------------------------------------------------------------------------


def _write_atomic(path: str, content: str, mode: int = 0o644) -> None:
	temporary = f"{path}.btu-tmp"
	with open(temporary, "w", encoding="utf-8") as handle:
		handle.write(content)
	os.chmod(temporary, mode)
	os.replace(temporary, path)


def write_file(path: str, content: str, force: bool = False) -> Outcome:
	"""Write ``content`` to ``path`` unless it is already there; keep a different file unless ``force``."""
	os.makedirs(os.path.dirname(path), exist_ok=True)
	if os.path.exists(path):
		with open(path, encoding="utf-8", errors="replace") as handle:
			current = handle.read()
		if current == content:
			return Outcome(path, "unchanged", "already up to date")
		if not force:
			return Outcome(
				path, "kept", "exists with different content and was kept; use --force to overwrite it"
			)
		_write_atomic(path, content)
		return Outcome(path, "updated")
	_write_atomic(path, content)
	return Outcome(path, "created")


def ensure_logs_folder(bench: str) -> str:
	logs = os.path.join(bench, "logs")
	os.makedirs(logs, exist_ok=True)
	return logs
