"""Pausing a site on the real daemon: site_config.json's maintenance_mode / pause_scheduler (the site's
value over common_site_config.json's, noticed by modification time) and BTU Configuration's Pause
All Schedules (read at a refresh). While paused nothing is enqueued for the site (status says so);
on resume misfire_grace decides what runs. The daemon runs on a bench folder of its own."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
from rq.job import Job

from btu.contracts.redis_keys import KEYS

from .conftest import SITE
from .services import DaemonProcess, wait_for, write_toml

RECORD = "tests.run_tasks.record"


class FakeBench:
	"""sites/common_site_config.json and sites/<site>/site_config.json pointing at the test's database
	and Redis, the daemon run as in a bench (--bench) with the test's TOML on top (plain jobs)."""

	def __init__(self, workdir: str, redis_url: str, site_db, misfire_grace: int = 3600) -> None:
		self.path = os.path.join(workdir, "bench")
		self.sites = os.path.join(self.path, "sites")
		os.makedirs(os.path.join(self.sites, SITE))
		os.makedirs(os.path.join(self.path, "apps"))
		self.common: dict = {"redis_queue": redis_url}
		self.site: dict = {
			"db_name": site_db.name,
			"db_user": site_db.args["user"],
			"db_password": site_db.args["password"],
			"db_host": site_db.args["host"],
			"db_port": site_db.args["port"],
		}
		self.write()
		self.socket_path = os.path.join(workdir, "btu.sock")
		self.toml = write_toml(
			os.path.join(workdir, "btu.toml"),
			{
				"job_mode": "plain",
				"queue_prefix": "",
				"socket_path": self.socket_path,
				"misfire_grace": misfire_grace,
				"lease_ttl": 3,
				"log_level": "DEBUG",
				"full_refresh_interval": 300,
			},
			{},
		)
		self.workdir = workdir

	def write(self, common: dict | None = None, site: dict | None = None) -> None:
		"""Rewrite the files as `bench set-config` does (the whole file, in place)."""
		self.common.update(common or {})
		self.site.update(site or {})
		Path(self.sites, "common_site_config.json").write_text(json.dumps(self.common, indent=1))
		Path(self.sites, SITE, "site_config.json").write_text(json.dumps(self.site, indent=1))

	def daemon(self) -> DaemonProcess:
		return DaemonProcess(
			self.workdir, self.toml, self.socket_path, env={"BTU_BENCH_PATH": self.path, "BTU_SITES": SITE}
		)


@pytest.fixture
def fake_bench(workdir, redis_url, site_db):
	started: list[DaemonProcess] = []

	def make(**kwargs) -> tuple[FakeBench, DaemonProcess]:
		bench = FakeBench(workdir, redis_url, site_db, **kwargs)
		daemon = bench.daemon()
		started.append(daemon)
		return bench, daemon.start()

	yield make
	for daemon in started:
		daemon.stop()


def queued(client: redis.Redis, schedule: str) -> list[int]:
	ids = [i.decode() for i in client.lrange("rq:queue:default", 0, -1)]
	jobs = [j for j in Job.fetch_many(ids, connection=client) if j is not None]
	return sorted(j.meta["btu_fire_time"] for j in jobs if j.meta.get("btu_schedule") == schedule)


def site_status(daemon: DaemonProcess) -> dict:
	return daemon.request("status").data["sites"][SITE]


def paused_for(daemon: DaemonProcess, text: str) -> bool:
	entry = site_status(daemon)
	return entry["paused"] and any(text in reason for reason in entry["pause_reasons"])


def test_site_config_flags_pause_the_site_and_misfire_grace_decides_on_resume(
	fake_bench, site_db, redis_client
):
	site_db.add_task("BTU-00001", RECORD, {"path": "/dev/null"})
	site_db.add_schedule("TS-000001", "BTU-00001", "* * * * * *")
	bench, daemon = fake_bench()
	wait_for(lambda: len(queued(redis_client, "TS-000001")) >= 2, 10, what="runs before the pause")
	assert site_status(daemon)["paused"] is False

	bench.write(site={"maintenance_mode": 1})  # bench --site test.localhost set-maintenance-mode on
	wait_for(lambda: paused_for(daemon, "site_config.json: maintenance_mode is set"), 10, what="paused")
	paused_at = time.time()
	count = len(queued(redis_client, "TS-000001"))
	wait_for(lambda: time.time() > paused_at + 3.5, 5)
	assert len(queued(redis_client, "TS-000001")) <= count + 1  # (one fire already in flight at most)
	frozen = len(queued(redis_client, "TS-000001"))
	wait_for(lambda: time.time() > paused_at + 5, 5)
	assert len(queued(redis_client, "TS-000001")) == frozen, "nothing is enqueued while paused"
	assert "TS-000001" in {k.decode() for k in redis_client.zrange(KEYS.next_runs(SITE), 0, -1)}
	output = daemon.output()
	assert re.search(
		rf"event=site_paused site={SITE} reason=\"site_config.json: maintenance_mode is set\"", output
	)

	bench.write(site={"maintenance_mode": 0})
	wait_for(lambda: not site_status(daemon)["paused"], 10, what="resumed")
	wait_for(lambda: len(queued(redis_client, "TS-000001")) > frozen, 10, what="runs after the resume")
	output = daemon.output()
	assert f"event=site_resumed site={SITE}" in output
	# The fire times missed while paused (within misfire_grace) became one late run.
	resumed = output[output.index("event=site_resumed") :]
	assert re.search(r"schedule=TS-000001 .*missed_fire_times_collapsed=[1-9]", resumed), resumed[:2000]
	fires = queued(redis_client, "TS-000001")
	assert len(fires) == len(set(fires))

	# common_site_config.json's pause_scheduler pauses every site; the site's own value wins.
	bench.write(common={"pause_scheduler": 1})
	wait_for(lambda: paused_for(daemon, "common_site_config.json: pause_scheduler is set"), 10, what="paused")
	bench.write(site={"pause_scheduler": 0})
	wait_for(lambda: not site_status(daemon)["paused"], 10, what="the site's own value winning")


def test_pause_all_schedules_of_btu_configuration_is_read_at_a_refresh(fake_bench, site_db, redis_client):
	site_db.add_task("BTU-00001", RECORD, {"path": "/dev/null"})
	site_db.add_schedule("TS-000001", "BTU-00001", "* * * * * *")
	bench, daemon = fake_bench()
	wait_for(lambda: queued(redis_client, "TS-000001"), 10, what="a run")
	site_db.execute(
		"INSERT INTO `tabSingles` (doctype, field, value) VALUES ('BTU Configuration', 'pause_all_schedules', '1')"
	)
	assert daemon.request("refresh", site=SITE).ok  # what saving BTU Configuration sends
	wait_for(lambda: paused_for(daemon, "BTU Configuration: Pause All Schedules is set"), 10, what="paused")
	frozen = len(queued(redis_client, "TS-000001")) + 1  # (one fire already in flight at most)
	time.sleep(3)
	assert len(queued(redis_client, "TS-000001")) <= frozen
	site_db.execute(
		"UPDATE `tabSingles` SET value = '0' WHERE doctype = 'BTU Configuration' AND field = 'pause_all_schedules'"
	)
	assert daemon.request("refresh", site=SITE).ok
	wait_for(lambda: not site_status(daemon)["paused"], 10, what="resumed")
	wait_for(lambda: len(queued(redis_client, "TS-000001")) > frozen, 10, what="runs again")


def test_a_one_shot_due_while_paused_runs_on_resume_only_within_misfire_grace(
	fake_bench, site_db, redis_client
):
	site_db.add_task("BTU-00001", RECORD, {"path": "/dev/null"})
	bench, daemon = fake_bench(misfire_grace=4)
	bench.write(site={"pause_scheduler": 1})  # bench --site test.localhost scheduler pause
	wait_for(lambda: paused_for(daemon, "pause_scheduler"), 10, what="paused")
	now = int(time.time())
	zone = "Europe/Paris"
	for name, fire in (("TS-SOON", now + 1), ("TS-LATER", now + 6)):
		wall = datetime.fromtimestamp(fire, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")
		site_db.add_schedule(name, "BTU-00001", "", zone, run_frequency="Once", run_at=wall)
		assert daemon.request("create_task_schedule", name, SITE).ok
	wait_for(lambda: redis_client.zcard(KEYS.next_runs(SITE)) == 2, 10, what="both planned")
	wait_for(lambda: time.time() > now + 7, 10)  # TS-SOON is now 6 s late (grace 4 s), TS-LATER 1 s
	assert queued(redis_client, "TS-SOON") == [] and queued(redis_client, "TS-LATER") == []
	bench.write(site={"pause_scheduler": 0})
	wait_for(lambda: queued(redis_client, "TS-LATER"), 10, what="TS-LATER run on resume")
	assert queued(redis_client, "TS-LATER") == [now + 6]
	skipped = wait_for(lambda: redis_client.hget(KEYS.skipped(SITE), "TS-SOON"), 10, what="TS-SOON skipped")
	assert json.loads(skipped)[0]["reason"] == "misfire"
	assert queued(redis_client, "TS-SOON") == []
	assert re.search(
		r"event=run_skipped_misfire site=\S+ schedule=TS-SOON .*misfire_grace_s=4", daemon.output()
	)


def test_status_says_a_site_is_paused(fake_bench, site_db):
	bench, daemon = fake_bench()
	bench.write(site={"maintenance_mode": True})
	wait_for(lambda: site_status(daemon)["paused"], 10, what="paused")
	from btu.scheduler_daemon import status_view

	reply = daemon.request("status")
	text = "\n".join(status_view.render(reply.ok, reply.message, reply.data, bench.socket_path))
	assert re.search(
		r"paused\s+PAUSED: site_config.json: maintenance_mode is set \(nothing is enqueued", text
	), text
