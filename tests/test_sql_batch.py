"""Batch reads of schedules (one query per 500 names) answer exactly as one read per name does."""

from __future__ import annotations

from btu.scheduler_daemon import sql
from btu.scheduler_daemon.config import SiteConfig
from btu.scheduler_daemon.sql import SiteDatabase


def database_of(site_db) -> SiteDatabase:
	args = site_db.args
	return SiteDatabase(
		SiteConfig(
			name="test.localhost",
			db_name=site_db.name,
			db_user=args["user"],
			db_password=args["password"],
			db_host=args["host"],
			db_port=args["port"],
		)
	)


def test_fetch_schedules_matches_fetch_schedule_name_by_name(site_db):
	site_db.add_task("BTU-00001", "btu.scheduler_daemon.demo_tasks.record_run")
	names = [f"TS-{i:04d}" for i in range(1200)]  # three IN (...) queries
	conn = site_db.connect()
	with conn.cursor() as cur:
		cur.executemany(
			"INSERT INTO `tabBTU Task Schedule` (name, creation, modified, owner, modified_by, task, enabled,"
			" queue_name, run_frequency, cron_string, cron_timezone) VALUES (%s, NOW(6), NOW(6), 'a', 'a',"
			" 'BTU-00001', 1, 'default', 'Cron Style', '0 0 1 1 *', 'UTC')",
			[(n,) for n in names],
		)
	conn.close()
	site_db.add_schedule("x'); DROP TABLE `tabBTU Task`; --", "BTU-00001", "0 0 1 1 *")
	database = database_of(site_db)
	asked = [
		*names[::2],
		"TS-9999",  # no such schedule
		"ts-0001",  # another spelling the column's collation matches (as fetch_schedule finds it)
		"x'); DROP TABLE `tabBTU Task`; --",
		"TS-0003",  # twice
		"TS-0003",
		"100% _",
	]
	found = database.fetch_schedules(asked)
	assert set(found) == set(asked)
	for name in set(asked):
		assert found[name] == database.fetch_schedule(name), name
	assert found["TS-9999"] is None and found["100% _"] is None
	assert found["ts-0001"]["name"] == "TS-0001"
	assert found["TS-0600"]["task_found"] == "BTU-00001"
	assert database.fetch_schedules([]) == {}
	assert len(asked) > sql.MANY_CHUNK
	database.close()
