"""setup-procfile / setup-supervisor / setup-systemd against a bench folder made in a temporary directory."""

from __future__ import annotations

import configparser
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from btu.contracts import protocol

from .conftest import SITE
from .services import REPO, Process, cleanup_dir, short_tmpdir, wait_for

BENCH_PROCFILE = """redis_cache: redis-server config/redis_cache.conf
redis_queue: redis-server config/redis_queue.conf
web: bench serve --port 8000

socketio: /usr/bin/node apps/frappe/socketio.js

watch: bench watch

schedule: bench schedule
worker: bench worker 1>> logs/worker.log 2>> logs/worker.error.log
"""
OUR_LINE = (
	"btu_scheduler: bench btu-scheduler run --log-to stdout "
	"1>> logs/btu_scheduler.log 2>> logs/btu_scheduler.error.log"
)


def make_bench(root: Path, name: str = "frappe-bench", procfile: str | None = BENCH_PROCFILE) -> Path:
	bench = root / name
	for folder in ("apps/frappe", "sites", "config/pids", "logs", "env/bin"):
		(bench / folder).mkdir(parents=True, exist_ok=True)
	(bench / "sites" / "common_site_config.json").write_text("{}")
	if procfile is not None:
		(bench / "Procfile").write_text(procfile)
	return bench


def cli(
	*args: str, cwd: Path | str = REPO, path_dirs: list[str] | None = None
) -> subprocess.CompletedProcess:
	env = {k: v for k, v in os.environ.items() if not k.startswith("BTU_")}
	env["PYTHONPATH"] = str(REPO)
	# No 'bench' executable on PATH unless a test puts one there.
	env["PATH"] = os.pathsep.join((path_dirs or []) + [os.path.dirname(sys.executable), "/usr/bin", "/bin"])
	return subprocess.run(
		[sys.executable, "-m", "btu.scheduler_daemon", *args],
		capture_output=True,
		text=True,
		cwd=str(cwd),
		env=env,
		timeout=60,
	)


def fake_bench_cli(folder: Path) -> Path:
	"""A stand-in for the bench CLI: ``bench btu-scheduler CMD ARGS`` runs the daemon's CLI with ``--bench``,
	as btu/commands does inside a real bench."""
	folder.mkdir(parents=True, exist_ok=True)
	script = folder / "bench"
	script.write_text(
		"#!/bin/sh\n"
		'[ "$1" = "btu-scheduler" ] || { echo "fake bench: only btu-scheduler" >&2; exit 64; }\n'
		'shift; cmd="$1"; shift\n'
		f'exec {sys.executable} -m btu.scheduler_daemon "$cmd" --bench "$PWD" "$@"\n'
	)
	script.chmod(0o755)
	return script


@pytest.fixture
def short_bench():
	"""A bench in a short /tmp folder (the socket lives in <bench>/config) and a bench CLI stand-in."""
	root = Path(short_tmpdir("btu-b-"))
	bench = make_bench(root, "fb")
	yield bench, fake_bench_cli(root / "bin").parent
	cleanup_dir(str(root))


# --- Procfile ---------------------------------------------------------------------------------------


def test_setup_procfile_adds_one_line_in_bench_style_and_is_idempotent(tmp_path):
	bench = make_bench(tmp_path)
	first = cli("setup-procfile", cwd=bench)  # default: the current directory
	assert first.returncode == 0, first.stderr
	assert "added" in first.stdout
	text = (bench / "Procfile").read_text()
	assert text == BENCH_PROCFILE + OUR_LINE + "\n"
	# Same shape as bench's worker line: "<name>: bench <command> 1>> logs/<name>.log 2>> logs/<name>.error.log"
	worker = [line for line in text.splitlines() if line.startswith("worker:")][0]
	assert worker.split(" 1>> ")[1].replace("worker", "btu_scheduler") == OUR_LINE.split(" 1>> ")[1]

	second = cli("setup-procfile", "--bench", str(bench))
	assert second.returncode == 0, second.stderr
	assert "unchanged" in second.stdout
	assert (bench / "Procfile").read_text() == text


def test_setup_procfile_keeps_a_different_line_unless_forced(tmp_path):
	bench = make_bench(
		tmp_path, procfile="web: bench serve\nbtu_scheduler: bench btu-scheduler run --site a"
	)  # no final newline
	kept = cli("setup-procfile", "--bench", str(bench))
	assert kept.returncode == 1
	assert "was kept" in kept.stderr and "--force" in kept.stderr
	assert (bench / "Procfile").read_text().endswith("--site a")
	forced = cli("setup-procfile", "--bench", str(bench), "--force")
	assert forced.returncode == 0, forced.stderr
	assert (bench / "Procfile").read_text() == f"web: bench serve\n{OUR_LINE}\n"


def test_setup_procfile_refuses_a_second_daemon_line_and_missing_procfile(tmp_path):
	bench = make_bench(tmp_path, procfile="web: bench serve\nbtu: bench btu-scheduler run\n")
	result = cli("setup-procfile", "--bench", str(bench))
	assert result.returncode == 1 and "another line already runs the BTU daemon" in result.stderr
	assert (bench / "Procfile").read_text() == "web: bench serve\nbtu: bench btu-scheduler run\n"

	bare = make_bench(tmp_path, "bare-bench", procfile=None)
	result = cli("setup-procfile", "--bench", str(bare))
	assert result.returncode == 1 and "bench setup procfile" in result.stderr

	result = cli("setup-procfile", cwd=tmp_path)
	assert result.returncode == 2
	assert "is not a bench" in result.stderr and "--bench" in result.stderr


def test_procfile_line_runs_the_daemon_with_logs_under_the_bench(short_bench, redis_url, site_db):
	"""Run our Procfile line the way honcho does (``sh -c``), through a bench CLI stand-in."""
	bench, bin_dir = short_bench
	sites = bench / "sites"
	(sites / "common_site_config.json").write_text(
		json.dumps({"redis_queue": redis_url, "db_host": "127.0.0.1"})
	)
	(sites / SITE).mkdir()
	(sites / SITE / "site_config.json").write_text(
		json.dumps({"db_name": site_db.name, "db_user": "root", "db_password": site_db.args["password"]})
	)
	assert cli("setup-procfile", "--bench", str(bench)).returncode == 0
	line = [l for l in (bench / "Procfile").read_text().splitlines() if l.startswith("btu_scheduler:")][0]
	command = line.split(":", 1)[1].strip()
	env = {
		**os.environ,
		"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
		"PYTHONPATH": str(REPO),
		"PYTHONUNBUFFERED": "1",
	}
	env = {k: v for k, v in env.items() if not k.startswith("BTU_")}
	process = Process(
		["/bin/sh", "-c", f"exec {command}"], str(bench / "honcho.out"), env=env, cwd=str(bench)
	)
	socket_path = str(bench / "config" / "btu_scheduler.sock")
	try:
		wait_for(lambda: protocol.ping(socket_path, 0.5).ok or not process.alive(), 20, what="daemon")
		assert process.alive(), (bench / "logs" / "btu_scheduler.error.log").read_text()
		log = wait_for(lambda: (bench / "logs" / "btu_scheduler.log").read_text(), what="log lines")
		assert "event=daemon_started" in log and f"bench={bench}" in log
		assert (bench / "logs" / "btu_scheduler.error.log").read_text() == ""
		assert process.output() == ""  # everything went to the bench's log files
	finally:
		assert process.stop() == 0


# --- supervisor -------------------------------------------------------------------------------------


def read_ini(path: Path) -> configparser.ConfigParser:
	parser = configparser.ConfigParser(interpolation=None, strict=True)
	parser.read_string(path.read_text())
	return parser


def test_setup_supervisor_writes_a_program_next_to_benchs_own(tmp_path):
	bench = make_bench(tmp_path)
	bin_dir = tmp_path / "bin"
	bench_cli = fake_bench_cli(bin_dir)
	result = cli("setup-supervisor", "--bench", str(bench), "--user", "frappe", path_dirs=[str(bin_dir)])
	assert result.returncode == 0, result.stderr
	path = bench / "config" / "btu_scheduler.supervisor.conf"
	assert f"{path}: written" in result.stdout
	assert "sudo supervisorctl reread && sudo supervisorctl update" in result.stdout
	assert f"sudo ln -sf {path} /etc/supervisor" in result.stdout
	program = read_ini(path)["program:frappe-bench-btu-scheduler"]
	assert program["command"] == f"{bench_cli} btu-scheduler run --log-to stdout"
	assert program["user"] == "frappe"
	assert program["directory"] == str(bench)
	assert program["autostart"] == "true" and program["autorestart"] == "true"
	assert program["stdout_logfile"] == f"{bench}/logs/btu_scheduler.log"
	assert program["stderr_logfile"] == f"{bench}/logs/btu_scheduler.error.log"
	assert program["stopsignal"] == "TERM" and int(program["stopwaitsecs"]) >= 5
	assert program["stopasgroup"] == "true" and program["killasgroup"] == "true"
	before = path.read_text()

	again = cli("setup-supervisor", "--bench", str(bench), "--user", "frappe", path_dirs=[str(bin_dir)])
	assert again.returncode == 0 and "unchanged" in again.stdout
	assert path.read_text() == before
	assert sorted(p.name for p in (bench / "config").iterdir()) == ["btu_scheduler.supervisor.conf", "pids"]


def test_setup_supervisor_direct_default_user_and_conflicts(tmp_path):
	bench = make_bench(tmp_path, "prod-bench")
	result = cli("setup-supervisor", cwd=bench)  # no bench on PATH: the bench's own Python runs the daemon
	assert result.returncode == 0, result.stderr
	path = bench / "config" / "btu_scheduler.supervisor.conf"
	program = read_ini(path)["program:prod-bench-btu-scheduler"]
	assert program["command"] == (
		f"{bench}/env/bin/python -m btu.scheduler_daemon run --bench {bench} --log-to stdout"
	)
	assert program["user"] == pwd.getpwuid(os.stat(bench).st_uid).pw_name  # the bench folder's owner

	path.write_text(path.read_text().replace("startretries=20", "startretries=3"))
	kept = cli("setup-supervisor", "--bench", str(bench))
	assert kept.returncode == 1 and "--force" in kept.stderr
	assert "startretries=3" in path.read_text()
	forced = cli("setup-supervisor", "--bench", str(bench), "--force")
	assert forced.returncode == 0 and "replaced" in forced.stdout
	assert "startretries=20" in path.read_text()


# --- systemd ----------------------------------------------------------------------------------------


def test_setup_systemd_writes_a_unit_under_config_systemd(tmp_path):
	bench = make_bench(tmp_path)
	bin_dir = tmp_path / "bin"
	bench_cli = fake_bench_cli(bin_dir)
	user = "root"
	result = cli("setup-systemd", "--bench", str(bench), "--user", user, path_dirs=[str(bin_dir)])
	assert result.returncode == 0, result.stderr
	path = bench / "config" / "systemd" / "frappe-bench-btu-scheduler.service"
	assert path.exists()
	assert (
		"sudo systemctl daemon-reload && sudo systemctl enable --now frappe-bench-btu-scheduler.service"
		in result.stdout
	)
	assert "runs as root" in result.stderr or "would run as root" in result.stderr
	unit = configparser.ConfigParser(interpolation=None, strict=True)
	unit.optionxform = str  # systemd keys are case-sensitive
	unit.read_string(path.read_text())
	service = unit["Service"]
	assert service["ExecStart"] == f"{bench_cli} btu-scheduler run --log-to stdout"
	assert service["User"] == user and service["Group"] == "root"
	assert service["WorkingDirectory"] == str(bench)
	assert service["Restart"] == "always"
	assert service["StandardOutput"] == f"append:{bench}/logs/btu_scheduler.log"
	assert service["StandardError"] == f"append:{bench}/logs/btu_scheduler.error.log"
	assert unit["Unit"]["PartOf"] == "frappe-bench-workers.target"  # like bench's own worker units
	assert unit["Install"]["WantedBy"] == "multi-user.target frappe-bench-workers.target"
	before = path.read_text()

	again = cli("setup-systemd", "--bench", str(bench), "--user", user, path_dirs=[str(bin_dir)])
	assert again.returncode == 0 and "unchanged" in again.stdout
	assert path.read_text() == before

	direct = cli(
		"setup-systemd",
		"--bench",
		str(bench),
		"--user",
		user,
		"--direct",
		"--force",
		path_dirs=[str(bin_dir)],
	)
	assert direct.returncode == 0, direct.stderr
	assert (
		f"ExecStart={bench}/env/bin/python -m btu.scheduler_daemon run --bench {bench} --log-to stdout"
		in path.read_text()
	)


def test_percent_signs_in_paths_are_escaped(tmp_path):
	bench = make_bench(tmp_path, "bench%1")
	assert cli("setup-systemd", "--bench", str(bench), "--user", "root").returncode == 0
	assert cli("setup-supervisor", "--bench", str(bench), "--user", "root").returncode == 0
	unit = (bench / "config" / "systemd" / "bench%1-btu-scheduler.service").read_text()
	assert "WorkingDirectory=" + str(bench).replace("%", "%%") in unit
	conf = (bench / "config" / "btu_scheduler.supervisor.conf").read_text()
	assert "directory=" + str(bench).replace("%", "%%") in conf
