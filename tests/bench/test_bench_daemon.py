"""The daemon on the real bench, as `setup-procfile` runs it: every site with BTU served although
the bench has a default site, metrics that never stop it, `watch` and `check-config` in a bench."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import time
import urllib.request
import uuid

import pytest

from btu.scheduler_daemon.config import secrets_in

from .harness import Api, SiteSnapshot, delete_new_records, wait_for

SAMPLES = "btu.btu_core.sample_tasks"


def restart(daemon) -> None:
	daemon.stop()
	daemon.start()


@pytest.fixture
def own_daemon(bench_processes):
	daemon = bench_processes.daemon
	if not daemon.restartable:
		pytest.skip("the daemon runs under `bench start` (honcho): restarting it would stop the whole bench")
	return daemon


def every_minute_task(api: Api, function: str, arguments: dict, label: str) -> tuple[str, str]:
	token = uuid.uuid4().hex[:6]
	task = api.insert_submitted(
		{
			"doctype": "BTU Task",
			"desc_short": f"BTU bench-suite {label} {token}",
			"function_string": f"{SAMPLES}.{function}",
			"arguments": json.dumps(arguments),
			"max_task_duration": 60,
		}
	)
	schedule = api.insert(
		{
			"doctype": "BTU Task Schedule",
			"task": task["name"],
			"run_frequency": "Cron Style",
			"cron_string": "* * * * *",
		}
	)
	return task["name"], schedule["name"]


def logs_of(api: Api, schedule: str) -> list[dict]:
	return api.get_list(
		"BTU Task Log", filters=[["schedule", "=", schedule]], fields=["name", "success_fail", "stdout"]
	)


def test_a_bench_with_a_default_site_gets_a_daemon_serving_every_site(
	bench, bench_config, own_daemon, site2_api
):
	"""`bench use site1` then `bench btu-scheduler run` (the Procfile line): site2 is served too
	(its task made and its run logged on site2 itself, through site2's own API)."""
	if site2_api is None:
		pytest.skip("set BTU_SITE2 to a second site with BTU installed")
	previous = bench.common_config().get("default_site")
	bench.bench("use", bench_config.site)
	site2 = site2_api
	assert site2.served_site() == bench_config.site2
	snapshot = SiteSnapshot.take(site2)
	try:
		restart(own_daemon)
		status = own_daemon.ping()
		assert status.ok
		events = own_daemon.events()
		started = [line for line in events.splitlines() if "event=daemon_started" in line][-1]
		assert f"sites={','.join(sorted([bench_config.site, bench_config.site2]))}" in started or (
			bench_config.site in started and bench_config.site2 in started
		), started
		_task, schedule = every_minute_task(site2, "hello", {"name": "site2"}, "site2")
		log = wait_for(lambda: logs_of(site2, schedule), 150, 2.0, what=f"a run on {bench_config.site2}")[0]
		assert log["success_fail"] == "Success" and "Hello, site2!" in log["stdout"]
	finally:
		delete_new_records(site2, snapshot)
		if previous and previous != bench_config.site:
			bench.bench("use", previous)
		elif not previous:
			bench.bench("config", "remove-common-config", "default_site")


def _free_port() -> int:
	with socket.socket() as probe:
		probe.bind(("127.0.0.1", 0))
		return probe.getsockname()[1]


def test_metrics_from_the_readme_line_never_stop_the_daemon(bench, own_daemon):
	"""`bench set-config -g btu_metrics_port N` (the README's line), then a restart: metrics are
	served; and with the port taken the daemon still runs, logs why and says so in `status`."""
	port = _free_port()
	try:
		bench.bench("set-config", "-g", "btu_metrics_port", str(port))
		restart(own_daemon)
		with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
			assert b"btu_runs_enqueued_total" in response.read()
		with socket.socket() as busy:
			busy.bind(("127.0.0.1", 0))
			busy.listen(1)
			taken = busy.getsockname()[1]
			bench.bench("set-config", "-g", "btu_metrics_port", str(taken))
			mark = own_daemon.mark()
			restart(own_daemon)
			assert own_daemon.ping().ok
			assert "event=metrics_unavailable" in own_daemon.events(mark)
			status = bench.bench("btu-scheduler", "status").stdout
			assert "NOT SERVED" in status and "Address already in use" in status, status
	finally:
		bench.bench("config", "remove-common-config", "btu_metrics_port")
		restart(own_daemon)


def fired_since(line: str, since: float) -> bool:
	"""A watch line's fire time (``HH:MM:SSZ``, today in UTC) is at or after ``since``."""
	stamp = dt.datetime.strptime(line.split()[0], "%H:%M:%SZ").time()
	today = dt.datetime.fromtimestamp(since, dt.timezone.utc).date()
	fired = dt.datetime.combine(today, stamp, dt.timezone.utc).timestamp()
	return fired >= since - 1 or fired + 86400 <= time.time() + 60  # (a run after midnight UTC)


def test_watch_shows_a_failed_task_log_as_failed(bench, bench_config, api, site_left_as_found):
	# Frappe reuses a deleted document's name: runs of an earlier TS-... may still be in RQ's registries.
	since = time.time()
	_task, schedule = every_minute_task(api, "fail", {"message": "watched failure"}, "watch")
	log = wait_for(lambda: logs_of(api, schedule), 150, 2.0, what="a failed run")[0]
	assert log["success_fail"] == "Failed"
	api.call(
		"frappe.client.set_value", doctype="BTU Task Schedule", name=schedule, fieldname="enabled", value=0
	)
	watch = bench.bench("btu-scheduler", "watch", "--seconds", "3", site=bench_config.site).stdout
	lines = [line for line in watch.splitlines() if f" {schedule} " in line and fired_since(line, since)]
	assert lines, watch
	assert all(
		"FAILED" in line and f"log={log['name']}" in line and "watched failure" in line for line in lines
	), lines
	assert not any(re.search(r"\bOK\b", line) for line in lines)


def test_check_config_warns_only_about_files_holding_secrets(bench):
	result = bench.bench("btu-scheduler", "check-config", check=False)
	assert result.returncode == 0, result.stderr
	warned = re.findall(r"warning: (\S+) is readable by every user", result.stderr)
	for path in warned:
		with open(path, encoding="utf-8") as handle:
			assert secrets_in(json.load(handle)), f"{path} holds no secret but was warned about"
	common = f"{bench.path}/sites/common_site_config.json"
	with open(common, encoding="utf-8") as handle:
		if not secrets_in(json.load(handle)):
			assert common not in warned


def test_a_site_created_while_the_daemon_runs_is_served_without_a_restart(bench, bench_processes):
	"""`bench new-site X --install-app btu` while the daemon runs: BTU's install tells the daemon, X's
	run is enqueued and executed by the bench's worker with no restart (same pid); `bench drop-site`
	then stops X (gone from `status` after a refresh) while the daemon keeps running."""
	user, password = os.environ.get("BTU_DB_ROOT_USER"), os.environ.get("BTU_DB_ROOT_PASSWORD")
	if not user or not password:
		pytest.skip("set BTU_DB_ROOT_USER and BTU_DB_ROOT_PASSWORD (a MariaDB admin, for bench new-site)")
	daemon = bench_processes.daemon
	before = daemon.ping()
	assert before.ok, before.message
	site = f"btunew{uuid.uuid4().hex[:6]}.localhost"
	root = ["--db-root-username", user, "--db-root-password", password]
	try:
		bench.bench("new-site", site, *root, "--admin-password", "admin", "--install-app", "btu", timeout=900)
		run_id = bench.execute(
			"btu.api.run_function",
			site=site,
			function_path=f"{SAMPLES}.hello",
			arguments={"name": "new site"},
		)

		def logged() -> list:
			found = bench.execute(
				"frappe.get_all",
				site=site,
				doctype="BTU Task Log",
				filters={"schedule": run_id},
				fields=["success_fail", "stdout"],
			)
			return found if isinstance(found, list) and found else []

		log = wait_for(logged, 180, 3.0, what=f"the run on {site}")[0]
		assert log["success_fail"] == "Success" and "Hello, new site!" in log["stdout"], log
		after = daemon.ping()
		assert after.ok and after.data["pid"] == before.data["pid"]  # served without a restart
	finally:
		bench.bench("drop-site", site, *root, "--force", "--no-backup", check=False, timeout=600)
	bench.bench("btu-scheduler", "refresh", check=False)
	wait_for(
		lambda: site not in bench.bench("btu-scheduler", "status").stdout, 60, 3.0, what=f"{site} dropped"
	)
	assert daemon.ping().data["pid"] == before.data["pid"]
