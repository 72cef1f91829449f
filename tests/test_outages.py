"""Redis and MariaDB going away while the daemon runs: it survives and catches up.

Each test starts its own private redis-server / mariadbd and stops only those."""

from __future__ import annotations

import os
import time

import pytest
import redis
from rq.job import Job

from .conftest import SITE
from .services import (
	DaemonProcess,
	MariaDBServer,
	RedisServer,
	SiteDB,
	cleanup_dir,
	short_tmpdir,
	wait_for,
	write_toml,
)

RECORD = "btu.scheduler_daemon.demo_tasks.record_run"


def fire_times(client: redis.Redis, schedule: str) -> list[int]:
	ids = [i.decode() for i in client.lrange("rq:queue:default", 0, -1)]
	return sorted(
		j.meta["btu_fire_time"]
		for j in Job.fetch_many(ids, connection=client)
		if j is not None and j.meta.get("btu_schedule") == schedule
	)


@pytest.fixture
def private_redis(workdir):
	server = RedisServer(workdir).start()
	yield server
	server.stop()


def test_redis_restart_is_survived_and_missed_runs_are_caught_up(workdir, private_redis, site_db):
	site_db.add_task("BTU-00001", RECORD)
	site_db.add_schedule("TS-000001", "BTU-00001", "* * * * * *")
	socket_path = os.path.join(workdir, "d.sock")
	config = write_toml(
		os.path.join(workdir, "d.toml"),
		{
			"job_mode": "plain",
			"redis_url": private_redis.url(0),
			"socket_path": socket_path,
			"lease_ttl": 3,
			"full_refresh_interval": 600,
		},
		{SITE: {"db_name": site_db.name, "db_user": "root"}},
	)
	daemon = DaemonProcess(workdir, config, socket_path).start()
	try:
		client = redis.Redis(port=private_redis.port)
		wait_for(lambda: len(fire_times(client, "TS-000001")) >= 2, what="runs before the outage")
		private_redis.stop()
		went_down = time.time()
		time.sleep(3)
		assert daemon.request("ping").ok  # socket stays up while Redis is gone
		status = daemon.request("status")
		assert status.ok and status.data["redis_ok"] is False
		private_redis.start()  # same port, empty: nothing persisted
		came_back = time.time()
		client = redis.Redis(port=private_redis.port)
		fires = wait_for(lambda: fire_times(client, "TS-000001"), 20, what="runs after Redis came back")
		# The fire time that fell due during the outage is enqueued on recovery (within misfire_grace)
		assert went_down - 1 <= fires[0] < came_back, (went_down, fires, came_back)
		wait_for(lambda: len(fire_times(client, "TS-000001")) >= 3, 10, what="regular runs again")
		assert len(set(fire_times(client, "TS-000001"))) == len(fire_times(client, "TS-000001"))
		output = daemon.output()
		assert "event=redis_unavailable" in output and "event=redis_recovered" in output
	finally:
		daemon.stop()


@pytest.fixture(scope="module")
def private_mariadb():
	workdir = short_tmpdir("btu-maria-")
	server = MariaDBServer(workdir).start()
	yield server
	server.stop()
	cleanup_dir(workdir)


def test_mariadb_outage_runs_continue_and_edits_apply_on_recovery(workdir, redis_url, private_mariadb):
	site_db = SiteDB.create(private_mariadb.connection_args())
	site_db.add_task("BTU-00001", RECORD)
	site_db.add_schedule("TS-000001", "BTU-00001", "* * * * * *")
	site_db.add_schedule("TS-000002", "BTU-00001", "0 0 1 1 *")
	socket_path = os.path.join(workdir, "d.sock")
	config = write_toml(
		os.path.join(workdir, "d.toml"),
		{
			"job_mode": "plain",
			"redis_url": redis_url,
			"socket_path": socket_path,
			"lease_ttl": 3,
			"full_refresh_interval": 600,
		},
		{SITE: {"db_name": site_db.name, "db_user": "root", "db_port": private_mariadb.port}},
	)
	daemon = DaemonProcess(workdir, config, socket_path).start()
	client = redis.Redis.from_url(redis_url)
	try:
		wait_for(lambda: len(fire_times(client, "TS-000001")) >= 1, what="first run")
		site_db.update_schedule("TS-000002", cron_string="* * * * * *")
		private_mariadb.stop()
		before = len(fire_times(client, "TS-000001"))
		assert daemon.request("create_task_schedule", "TS-000002", SITE).ok  # accepted, SQL is down
		time.sleep(3)
		# Runs keep coming from what Redis holds; the daemon answers
		assert len(fire_times(client, "TS-000001")) >= before + 2
		assert daemon.request("ping").ok
		assert fire_times(client, "TS-000002") == []
		private_mariadb.start()
		# The edit sent during the outage is applied once MariaDB is back
		wait_for(lambda: fire_times(client, "TS-000002"), 30, what="edited schedule to run after recovery")
		output = daemon.output()
		assert "event=sql_unavailable" in output and "event=sql_recovered" in output
	finally:
		daemon.stop()
		if not private_mariadb.ping():
			private_mariadb.start()
		site_db.drop()
