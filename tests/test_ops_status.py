"""`btu-scheduler status`: a table per site and --json, from a real daemon; exit 1 when none answers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone

import pymysql
import redis

from btu.contracts.redis_keys import KEYS
from btu.scheduler_daemon.schema import init_database

from .conftest import SITE
from .services import REPO, SiteDB, wait_for, write_toml

RECORD = "btu.scheduler_daemon.demo_tasks.record_run"


def cli(*args: str) -> subprocess.CompletedProcess:
	env = {k: v for k, v in os.environ.items() if not k.startswith("BTU_")}
	return subprocess.run(
		[sys.executable, "-m", "btu.scheduler_daemon", *args],
		capture_output=True,
		text=True,
		cwd=str(REPO),
		env=env,
		timeout=60,
	)


def test_status_table_per_site(site_db, start_daemon, daemon_config, start_worker, workdir):
	site_db.add_task("BTU-00001", RECORD, {"path": os.path.join(workdir, "runs.txt")})
	site_db.add_task("BTU-00002", RECORD, {"path": os.path.join(workdir, "other.txt")})
	site_db.add_schedule("TS-000001", "BTU-00001", "* * * * * *")  # every second: runs in the last hour
	site_db.add_schedule("TS-000002", "BTU-00002", "30 9 * * *", "Asia/Tokyo")
	site_db.add_schedule("TS-000003", "BTU-00009", "0 9 * * *")  # its task does not exist: invalid
	daemon = start_daemon()
	wait_for(
		lambda: daemon.request("status").data["counters"]["runs_enqueued"] >= 2, 20, what="two runs enqueued"
	)
	wait_for(lambda: not daemon.request("status").data["refresh"]["running"], what="refresh complete")

	result = cli("status", "--config", daemon_config.path)
	assert result.returncode == 0, result.stderr
	out = result.stdout
	print(out)
	assert re.search(
		r"^daemon\s+UP\s+pid \d+\s+version \S+\s+uptime \d+s\s+leader\s+job_mode plain$", out, re.M
	)
	assert f"socket    {daemon_config.socket_path}" in out
	assert re.search(r"^redis\s+ok", out, re.M)
	assert re.search(r"^refresh\s+idle; last: 3 schedules in [\d.]+ s, \d+s ago; every 5m 00s$", out, re.M)
	assert re.search(r"^error\s+-$", out, re.M)
	assert f"\nsite {SITE}\n" in out
	assert re.search(r"^  database\s+ok$", out, re.M)
	assert re.search(r"^  schedules\s+2 known, 1 invalid$", out, re.M)
	runs_last_hour = int(re.search(r"^  runs last hour\s+(\d+)$", out, re.M).group(1))
	assert runs_last_hour >= 2
	assert re.search(r"^  last error\s+-$", out, re.M)
	assert "  next 2 runs:" in out
	header = re.search(r"^    SCHEDULE\s+TASK\s+LOCAL \(schedule's zone\)\s+UTC$", out, re.M)
	assert header
	tokyo = [line for line in out.splitlines() if line.strip().startswith("TS-000002")][0]
	# 09:30 in Tokyo is 00:30 UTC, every day
	assert re.search(r"BTU-00002\s+\d{4}-\d\d-\d\d 09:30:00 JST\s+\d{4}-\d\d-\d\d 00:30:00 UTC$", tokyo), (
		tokyo
	)
	every_second = [line for line in out.splitlines() if line.strip().startswith("TS-000001")][0]
	assert "BTU-00001" in every_second and every_second.endswith("UTC")
	assert "! TS-000003: its task 'BTU-00009' does not exist" in out

	# Only the sites asked for
	only = cli("status", "--socket", daemon_config.socket_path, "--site", "other.site")
	assert only.returncode == 0 and f"site {SITE}" not in only.stdout and "daemon    UP" in only.stdout


def test_status_json(site_db, start_daemon, daemon_config):
	site_db.add_task("BTU-00001", RECORD)
	site_db.add_schedule("TS-000002", "BTU-00001", "30 9 * * *", "Asia/Tokyo")
	daemon = start_daemon()
	wait_for(
		lambda: daemon.request("status").data["sites"][SITE].get("schedules") == 1, what="schedule known"
	)
	result = cli("status", "--json", "--socket", daemon_config.socket_path)
	assert result.returncode == 0, result.stderr
	data = json.loads(result.stdout)
	assert data["ok"] is True and data["daemon"] == "up" and data["socket"] == daemon_config.socket_path
	assert data["pid"] == daemon.process.pid and data["leader"] is True and data["job_mode"] == "plain"
	assert data["uptime_s"] >= 0 and data["started_at"] <= time.time()
	assert data["lease_holder"].split(":")[1] == str(daemon.process.pid)
	assert data["reconnects"] == {"redis": 0, "sql": 0}
	assert set(data["refresh"]) >= {"running", "done", "total", "last_seconds", "last_completed_at"}
	site = data["sites"][SITE]
	assert site["sql_ok"] is True and site["schedules"] == 1 and site["runs_last_hour"] == 0
	assert site["invalid_schedules"] == {} and site["last_error"] is None
	(run,) = site["next_runs"]
	assert run["schedule"] == "TS-000002" and run["task"] == "BTU-00001" and run["timezone"] == "Asia/Tokyo"
	utc = datetime.fromtimestamp(run["fire_time"], timezone.utc)
	assert (utc.hour, utc.minute) == (0, 30)
	assert run["fire_time_utc"] == utc.strftime("%Y-%m-%dT%H:%M:%SZ")
	local = datetime.fromisoformat(run["fire_time_local"])
	assert (local.hour, local.minute) == (9, 30) and local.utcoffset().total_seconds() == 9 * 3600
	assert local.timestamp() == run["fire_time"]


def test_status_exit_code_1_and_down_when_no_daemon(workdir):
	missing = os.path.join(workdir, "nobody.sock")
	result = cli("status", "--socket", missing)
	assert result.returncode == 1
	assert re.search(r"^daemon\s+DOWN$", result.stdout, re.M)
	assert f"BTU scheduler daemon is not running at {missing}" in result.stdout
	result = cli("status", "--json", "--socket", missing)
	assert result.returncode == 1
	data = json.loads(result.stdout)
	assert data["ok"] is False and data["daemon"] == "down" and data["socket"] == missing
	assert "not running" in data["message"]


def test_status_shows_a_sites_database_error(site_db, start_daemon, daemon_config):
	daemon_config(full_refresh_interval=1)
	daemon = start_daemon()
	wait_for(lambda: daemon.request("status").data["counters"]["refreshes"] >= 1, what="first refresh")
	site_db.drop()  # the site's database disappears under the running daemon
	wait_for(
		lambda: daemon.request("status").data["sites"][SITE]["sql_ok"] is False, 15, what="sql error seen"
	)
	result = cli("status", "--config", daemon_config.path)
	assert result.returncode == 0, result.stderr  # the daemon answers: degraded, not down
	assert re.search(r"^  database\s+UNREACHABLE$", result.stdout, re.M)
	assert re.search(
		rf"^  last error\s+SQL {re.escape(SITE)}: .*Unknown database .* ago\)$", result.stdout, re.M
	), result.stdout


def test_a_bench_site_without_btu_is_skipped_quietly(
	site_db, start_daemon, daemon_config, redis_url, workdir
):
	"""Not every site of a bench has BTU installed: such a site is no error, and is picked up once installed."""
	plain = SiteDB(f"{site_db.name}_nobtu", site_db.args)
	conn = pymysql.connect(**site_db.args, autocommit=True)
	conn.cursor().execute(f"CREATE DATABASE `{plain.name}`")
	conn.close()
	try:
		config = write_toml(
			os.path.join(workdir, "two.toml"),
			{
				"job_mode": "plain",
				"redis_url": redis_url,
				"socket_path": daemon_config.socket_path,
				"full_refresh_interval": 300,
			},
			{
				SITE: {"db_name": site_db.name, "db_user": "root"},
				"other.site": {"db_name": plain.name, "db_user": "root"},
			},
		)
		leftover = redis.Redis.from_url(redis_url)
		leftover.zadd(KEYS.next_runs("other.site"), {"TS-OLD": time.time() + 3600})  # e.g. BTU uninstalled
		daemon = start_daemon(config_path=config)
		wait_for(lambda: daemon.request("status").data["refresh"]["last_completed_at"], what="first refresh")
		wait_for(lambda: leftover.zcard(KEYS.next_runs("other.site")) == 0, what="leftover entry removed")
		time.sleep(1.5)  # room for retries, if the site were treated as failing
		status = daemon.request("status").data
		other = status["sites"]["other.site"]
		assert other["btu_installed"] is False and other["sql_ok"] is True and other["last_error"] is None
		assert status["last_error"] is None and status["sites"][SITE]["btu_installed"] is True
		out = cli("status", "--socket", daemon_config.socket_path).stdout
		assert re.search(r"^  database\s+ok; BTU not installed in this site: skipped$", out, re.M), out
		output = daemon.output()
		assert output.count("event=site_without_btu site=other.site") == 1
		assert "event=refresh_failed" not in output

		init_database(site_db.args, plain.name)  # bench --site other.site install-app btu
		assert daemon.request("refresh", site="other.site").ok
		wait_for(
			lambda: daemon.request("status").data["sites"]["other.site"]["btu_installed"], what="BTU found"
		)
		assert "event=site_btu_found site=other.site" in daemon.output()
	finally:
		plain.drop()
