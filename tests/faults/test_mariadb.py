"""MariaDB restarted (a private mariadbd), and schedule rows locked by other transactions."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from btu.contracts.redis_keys import KEYS

from ..services import MariaDBServer, SiteDB, cleanup_dir, short_tmpdir
from .harness import SITE, STATS, add_every_second, check_runs, queued_runs, scale, wait_caught_up, wait_for

pytestmark = pytest.mark.faults
NEXT_RUNS = KEYS.next_runs(SITE)


@pytest.fixture(scope="module")
def private_mariadb():
	workdir = short_tmpdir("btu-fm-")
	server = MariaDBServer(workdir).start()
	yield server
	server.stop()
	cleanup_dir(workdir)


def test_mariadb_restarts_runs_go_on_and_edits_apply_after(bench, private_mariadb):
	site_db = SiteDB.create(private_mariadb.connection_args())
	try:
		crons = add_every_second(site_db, 4)
		site_db.add_schedule("TS-EDIT", "BTU-F0001", "0 0 0 1 1 *")
		daemon = bench.daemon("d", site_db=site_db, full_refresh_interval=2)
		client = bench.client()
		wait_for(lambda: client.zcard(NEXT_RUNS) == len(crons) + 1, 20, what="schedules in Redis")
		start = max(client.zmscore(NEXT_RUNS, list(crons)))
		for i, how in enumerate(scale(["kill", "stop"], ["kill", "stop", "kill", "kill", "stop", "kill"])):
			time.sleep(1.5)
			site_db.update_schedule("TS-EDIT", cron_string=f"{i} 0 0 1 1 *")
			if how == "kill":
				private_mariadb.process.stop(signal.SIGKILL)  # a crash: InnoDB recovers on start
			else:
				private_mariadb.stop()
			STATS.add(bench.test_name, faults_injected=1, mariadb_restarts=1)
			assert daemon.request("create_task_schedule", "TS-EDIT", SITE).ok  # accepted while SQL is down
			assert daemon.request("refresh").ok
			time.sleep(3)  # runs keep coming from Redis; a failed refresh removes nothing
			assert daemon.request("ping").ok
			assert client.zcard(NEXT_RUNS) == len(crons) + 1
			private_mariadb.start()
			wanted = f'"cron":"{i} 0 0 1 1 *"'.encode()
			wait_for(
				lambda: wanted in (client.hget(KEYS.specs(SITE), "TS-EDIT") or b""),
				40,
				what="the edit made during the outage to be applied",
			)
		end = time.time() + 1
		wait_caught_up(client, crons, end, 30)
		verdict = check_runs(queued_runs(client, crons), crons, start, end)
		STATS.verdict(bench.test_name, verdict)
		assert verdict.ok, verdict.summary()
		log = daemon.log()
		# A refresh while the site's database is down skips that site (its edits wait, parked) rather
		# than failing: the outage and the recovery are each logged once.
		assert "event=sql_unavailable" in log and "event=sql_recovered" in log
		assert "event=schedule_removed" not in log
	finally:
		if not private_mariadb.ping():
			private_mariadb.start()
		site_db.drop()


def test_locked_rows_and_tables_do_not_stop_the_daemon(bench):
	site_db = bench.site_db
	crons = add_every_second(site_db, 4)
	site_db.add_schedule("TS-LOCKED", "BTU-F0001", "* * * * * *")
	crons["TS-LOCKED"] = "* * * * * *"
	daemon = bench.daemon("d", full_refresh_interval=2)
	client = bench.client()
	wait_for(lambda: client.zcard(NEXT_RUNS) == len(crons), 20, what="schedules in Redis")
	start = max(client.zmscore(NEXT_RUNS, list(crons)))

	# 1. Another transaction holds the schedule's and its task's rows (SELECT ... FOR UPDATE) and has
	#    changed the schedule without committing: the daemon reads the committed row, without waiting.
	locker = site_db.connect()
	locker.autocommit(False)
	with locker.cursor() as cur:
		cur.execute("SELECT * FROM `tabBTU Task Schedule` WHERE name = %s FOR UPDATE", ("TS-LOCKED",))
		cur.execute("SELECT * FROM `tabBTU Task` WHERE name = %s FOR UPDATE", ("BTU-F0001",))
		cur.execute(
			"UPDATE `tabBTU Task Schedule` SET cron_string = '*/2 * * * * *' WHERE name = %s", ("TS-LOCKED",)
		)
	STATS.add(bench.test_name, faults_injected=1, row_locks=1)
	sent = time.time()
	assert daemon.request("create_task_schedule", "TS-LOCKED", SITE).ok
	assert daemon.request("refresh").ok
	wait_for(
		lambda: sum(
			1
			for e in daemon.events("schedule_synced")
			if e["schedule"] == "TS-LOCKED"
			and e["_time"] >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sent))
		),
		5,
		what="the locked schedule to be read without waiting for the lock",
	)
	time.sleep(2)
	locker.commit()
	locker.close()
	crons["TS-LOCKED"] = "*/2 * * * * *"
	assert daemon.request("create_task_schedule", "TS-LOCKED", SITE).ok
	wait_for(
		lambda: b"*/2 * * * * *" in (client.hget(KEYS.timings(SITE), "TS-LOCKED") or b""),
		10,
		what="the committed edit",
	)
	del crons["TS-LOCKED"]  # its fire times changed rule mid-test; the other schedules are checked

	# 2. The whole table write-locked (LOCK TABLES): the daemon's reads wait, its runs do not.
	hold = scale(3.0, 35.0)  # LONG: longer than the daemon's 30 s read timeout
	table_locker = site_db.connect()
	ready = threading.Event()

	def lock_table():
		with table_locker.cursor() as cur:
			cur.execute("LOCK TABLES `tabBTU Task Schedule` WRITE")
			ready.set()
			time.sleep(hold)
			cur.execute("UNLOCK TABLES")

	thread = threading.Thread(target=lock_table)
	thread.start()
	ready.wait(10)
	STATS.add(bench.test_name, faults_injected=1, row_locks=1)
	try:
		site_db_other = SiteDB(site_db.name, site_db.args)
		assert daemon.request("refresh").ok
		assert daemon.request("create_task_schedule", "TS-F0000", SITE).ok
		time.sleep(min(hold, 3.0))
		assert daemon.request("ping").ok
	finally:
		thread.join(hold + 30)
		table_locker.close()
	site_db_other.update_schedule("TS-F0001", argument_overrides='{"label": "after the lock"}')
	assert daemon.request("create_task_schedule", "TS-F0001", SITE).ok
	wait_for(
		lambda: b"after the lock" in (client.hget(KEYS.specs(SITE), "TS-F0001") or b""),
		40,
		what="syncs to work again after the lock",
	)
	end = time.time() + 1
	wait_caught_up(client, crons, end, 30)
	verdict = check_runs(queued_runs(client, crons), crons, start, end)
	STATS.verdict(bench.test_name, verdict)
	assert verdict.ok, verdict.summary()
