"""The README's demo (scripts/demo.sh) erases nothing it did not create: its own redis-server on a
free port and its own database, both gone at the end; a Redis database or a MariaDB database that
holds someone else's data is refused with the setting named; it says what it uses. And
``init-db --demo`` never overwrites a task or schedule that merely bears a demo name."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid

import pymysql
import pytest

from .services import MARIADB, REPO

DEMO = str(REPO / "scripts" / "demo.sh")


def demo_env(**settings: str) -> dict[str, str]:
	"""The user's environment without BTU settings (but the virtualenv CI chose), plus ``settings``."""
	environment = {k: v for k, v in os.environ.items() if not k.startswith("BTU_") or k == "BTU_VENV"}
	if "BTU_VENV" not in environment:
		environment["BTU_VENV"] = str(os.path.dirname(os.path.dirname(sys.executable)))
	environment.update(settings)
	return environment


@pytest.fixture
def run_demo(workdir):
	"""Run the demo with its files (logs, socket) under this test's own folder, removed after."""

	def run(**settings: str) -> subprocess.CompletedProcess:
		return _run_demo(TMPDIR=workdir, **settings)

	return run


def _run_demo(**settings: str) -> subprocess.CompletedProcess:
	return subprocess.run(
		["bash", DEMO],
		capture_output=True,
		text=True,
		cwd=str(REPO),
		env=demo_env(**settings),
		stdin=subprocess.DEVNULL,
		timeout=300,
	)


def databases() -> set[str]:
	conn = pymysql.connect(**MARIADB)
	try:
		with conn.cursor() as cur:
			cur.execute("SHOW DATABASES")
			return {row[0] for row in cur.fetchall()}
	finally:
		conn.close()


def alive(pid: int) -> bool:
	try:
		os.kill(pid, 0)
	except ProcessLookupError:
		return False
	return True


def test_the_demo_runs_on_its_own_redis_and_database_and_leaves_neither(mariadb_available, run_demo, workdir):
	name = f"btu_demo_{uuid.uuid4().hex[:8]}"
	result = run_demo(BTU_DEMO_SECONDS="12", BTU_DEMO_DB=name)
	out = result.stdout
	assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
	assert out.startswith("demo: preparing .venv"), out[:300]  # says what it does before installing
	redis = re.search(
		r"^demo: Redis: its own redis-server at redis://127\.0\.0\.1:(\d+)/0 \(pid (\d+),", out, re.M
	)
	assert redis, out
	assert f"demo: MariaDB: database {name} on 127.0.0.1:3306 (created now, dropped at the end" in out
	assert f"demo: starting the daemon and an rq worker (files in {workdir}/btu-demo-" in out
	runs = [
		line for line in out.splitlines() if re.match(r"\d\d:\d\d:\d\dZ demo\.localhost TS-00000[123] ", line)
	]
	assert any(" OK " in line for line in runs), out[-3000:]
	assert f"demo: stopped its redis-server (pid {redis.group(2)})" in out
	assert f"demo: dropped database {name}" in out
	assert not alive(int(redis.group(2)))
	assert name not in databases()


def test_the_demo_refuses_a_redis_database_holding_keys_it_did_not_create(
	redis_client, redis_url, run_demo, workdir
):
	redis_client.set("someone:else", "precious")
	name = f"btu_demo_{uuid.uuid4().hex[:8]}"
	result = run_demo(BTU_DEMO_REDIS=redis_url, BTU_DEMO_DB=name, BTU_DEMO_SECONDS="1")
	assert result.returncode == 1, result.stdout + result.stderr
	assert f"demo: BTU_DEMO_REDIS={redis_url} holds 1 keys the demo did not create" in result.stderr
	assert redis_client.get("someone:else") == b"precious" and redis_client.dbsize() == 1
	assert name not in databases()
	assert os.listdir(workdir) == []  # refused before starting anything: its folder is gone too


def test_the_demo_refuses_a_database_that_exists_and_leaves_it_as_it_was(site_db, run_demo):
	site_db.add_task("BTU-00001", "myapp.tasks.precious", {})
	result = run_demo(BTU_DEMO_DB=site_db.name, BTU_DEMO_SECONDS="1")
	assert result.returncode == 1, result.stdout + result.stderr
	assert f"demo: MariaDB database {site_db.name} exists already" in result.stderr
	assert "BTU_DEMO_DB" in result.stderr
	assert site_db.name in databases()
	conn = site_db.connect()
	try:
		with conn.cursor() as cur:
			cur.execute("SELECT name, function_string FROM `tabBTU Task`")
			assert cur.fetchall() == (("BTU-00001", "myapp.tasks.precious"),)
	finally:
		conn.close()
	redis = re.search(r"its own redis-server at \S+ \(pid (\d+),", result.stdout)
	assert redis and not alive(int(redis.group(1)))  # its own Redis stopped on the way out


def init_db_demo(site_db, *extra: str) -> subprocess.CompletedProcess:
	return subprocess.run(
		[
			sys.executable,
			"-m",
			"btu.scheduler_daemon",
			"init-db",
			"--db-name",
			site_db.name,
			"--demo",
			*extra,
		],
		capture_output=True,
		text=True,
		cwd=str(REPO),
		timeout=120,
	)


@pytest.mark.parametrize("kind", ["task", "schedule", "load schedule"])
def test_init_db_demo_never_overwrites_a_row_that_merely_bears_a_demo_name(site_db, kind):
	site_db.add_task("BTU-00009", "myapp.tasks.nightly", {})
	if kind == "task":
		site_db.add_task("BTU-00002", "myapp.tasks.invoices", {})
		table, name, extra = "BTU Task", "BTU-00002", ()
	elif kind == "schedule":
		site_db.add_schedule("TS-000003", "BTU-00009", "0 2 * * *", "UTC")
		table, name, extra = "BTU Task Schedule", "TS-000003", ()
	else:
		site_db.add_schedule("TS-L0000002", "BTU-00009", "0 2 * * *", "UTC")
		table, name, extra = "BTU Task Schedule", "TS-L0000002", ("--demo-schedules", "5")
	before = site_db_rows(site_db)
	result = init_db_demo(site_db, *extra)
	assert result.returncode == 1, result.stdout + result.stderr
	assert "Traceback" not in result.stderr
	assert f"init-db --demo refused: database {site_db.name} already has a {table} {name} that is not" in (
		result.stderr
	)
	assert site_db_rows(site_db) == before  # nothing written: the demo's own rows neither


def test_init_db_demo_twice_on_its_own_database_writes_its_rows_again(site_db):
	for _ in range(2):
		result = init_db_demo(site_db, "--demo-schedules", "3")
		assert result.returncode == 0, result.stderr
	rows = site_db_rows(site_db)
	assert [name for name, *_ in rows["schedules"]] == [
		"TS-000001",
		"TS-000002",
		"TS-000003",
		"TS-000004",
		"TS-000005",
		"TS-L0000001",
		"TS-L0000002",
		"TS-L0000003",
	]


def site_db_rows(site_db) -> dict[str, tuple]:
	conn = site_db.connect()
	try:
		with conn.cursor() as cur:
			cur.execute("SELECT name, function_string, arguments FROM `tabBTU Task` ORDER BY name")
			tasks = cur.fetchall()
			cur.execute("SELECT name, task, cron_string, enabled FROM `tabBTU Task Schedule` ORDER BY name")
			return {"tasks": tasks, "schedules": cur.fetchall()}
	finally:
		conn.close()
