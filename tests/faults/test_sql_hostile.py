"""Broken schedule rows in SQL: each fails alone, with a log line naming it; the others keep running."""

from __future__ import annotations

import time

import pytest

from btu.contracts.redis_keys import KEYS

from .harness import RECORD, SITE, STATS, check_runs, queued_runs, wait_caught_up, wait_for

pytestmark = pytest.mark.faults
NEXT_RUNS = KEYS.next_runs(SITE)
NULLABLE_SCHEDULE_COLUMNS = [
	"task",
	"task_description",
	"queue_name",
	"run_frequency",
	"day_of_week",
	"month",
	"cron_string",
	"cron_timezone",
	"schedule_description",
	"argument_overrides",
	"redis_job_id",
	"creation",
	"modified",
	"modified_by",
	"owner",
]
NULLABLE_TASK_COLUMNS = [
	"desc_short",
	"task_group",
	"queue_name",
	"last_runtime",
	"desc_long",
	"function_string",
	"arguments",
	"amended_from",
	"creation",
	"modified",
	"modified_by",
	"owner",
]


def test_broken_rows_fail_alone(bench):
	db = bench.site_db
	db.add_task("BTU-GOOD", RECORD, {"path": "/dev/null", "label": "good"})
	db.add_task("BTU-CANCELLED", RECORD, docstatus=2)
	db.add_task("BTU-DRAFT", RECORD, docstatus=0)
	db.add_task("BTU-BADJSON", RECORD, "{not json")
	db.add_task("BTU-ARRAY", RECORD, "[1, 2]")
	db.add_task("BTU-NODOTS", "nodots")
	db.add_task("BTU-NULLS", RECORD)
	db.execute(
		"UPDATE `tabBTU Task` SET "
		+ ", ".join(f"`{c}` = NULL" for c in NULLABLE_TASK_COLUMNS)
		+ " WHERE name = 'BTU-NULLS'"
	)
	every = "* * * * * *"
	broken = {
		"TS-CRON-RANGE": dict(task="BTU-GOOD", cron="61 * * * * *"),
		"TS-CRON-WORDS": dict(task="BTU-GOOD", cron="not a cron"),
		"TS-CRON-EMPTY": dict(task="BTU-GOOD", cron=""),
		"TS-CRON-FIELDS": dict(task="BTU-GOOD", cron="* * * * * * * * *"),
		"TS-CRON-NEVER": dict(task="BTU-GOOD", cron="0 0 0 30 2 *"),
		"TS-CRON-WIDE": dict(task="BTU-GOOD", cron="\uff0a * * * * *"),
		"TS-TZ-MARS": dict(task="BTU-GOOD", cron=every, timezone="Mars/Base"),
		"TS-TZ-PATH": dict(task="BTU-GOOD", cron=every, timezone="../../../etc/passwd"),
		"TS-TZ-ABS": dict(task="BTU-GOOD", cron=every, timezone="/etc/localtime"),
		"TS-TZ-NUL": dict(task="BTU-GOOD", cron=every, timezone="UTC\x00"),
		"TS-TASK-MISSING": dict(task="BTU-MISSING", cron=every),
		"TS-TASK-CANCELLED": dict(task="BTU-CANCELLED", cron=every),
		"TS-TASK-DRAFT": dict(task="BTU-DRAFT", cron=every),
		"TS-TASK-NODOTS": dict(task="BTU-NODOTS", cron=every),
		"TS-TASK-NULLS": dict(task="BTU-NULLS", cron=every),
		"TS-ARGS-BADJSON": dict(task="BTU-BADJSON", cron=every),
		"TS-ARGS-ARRAY": dict(task="BTU-ARRAY", cron=every),
		"TS-OVR-STRING": dict(task="BTU-GOOD", cron=every, overrides='"just a string"'),
		"TS-OVR-HUGEINT": dict(task="BTU-GOOD", cron=every, overrides='{"n": ' + "9" * 50000 + "}"),
		"TS-OVR-DEEP": dict(task="BTU-GOOD", cron=every, overrides="[" * 200000 + "]" * 200000),
		"TS-OVR-TRUNC": dict(task="BTU-GOOD", cron=every, overrides='{"label": "x'),
		"TS-FREQ-UNKNOWN": dict(task="BTU-GOOD", cron=None, run_frequency="Fortnightly"),
		"TS-FREQ-WEEKLY": dict(task="BTU-GOOD", cron=None, run_frequency="Weekly", day_of_week="Funday"),
		"TS-FREQ-MONTH": dict(
			task="BTU-GOOD", cron=None, run_frequency="Yearly", month="Smarch", day_of_month=1
		),
		"TS-NULLS": dict(task="BTU-GOOD", cron=every),  # then every nullable column set to NULL
	}
	for name, spec in broken.items():
		extra = {k: v for k, v in spec.items() if k in ("day_of_week", "month", "day_of_month")}
		db.add_schedule(
			name,
			spec["task"],
			spec["cron"],
			timezone=spec.get("timezone", "UTC"),
			overrides=spec.get("overrides"),
			run_frequency=spec.get("run_frequency", "Cron Style"),
			**extra,
		)
	db.execute(
		"UPDATE `tabBTU Task Schedule` SET "
		+ ", ".join(f"`{c}` = NULL" for c in NULLABLE_SCHEDULE_COLUMNS)
		+ " WHERE name = 'TS-NULLS'"
	)
	good = {"TS-GOOD-1": every, "TS-GOOD-2": "*/2 * * * * *"}
	for name, cron in good.items():
		db.add_schedule(name, "BTU-GOOD", cron)
	STATS.add(bench.test_name, bad_inputs_sent=len(broken) + 1)

	daemon = bench.daemon("d", full_refresh_interval=3)
	client = bench.client()
	wait_for(lambda: client.zcard(NEXT_RUNS) == len(good), 20, what="the good schedules in Redis")
	start = max(client.zmscore(NEXT_RUNS, list(good)))
	# The broken ones also come one by one through the socket (the path a Desk save takes).
	for name in broken:
		reply = daemon.request("create_task_schedule", name, SITE)
		assert reply.ok, reply.message
	time.sleep(4)  # at least one more full refresh
	invalid = {e["schedule"]: e.get("error", "") for e in daemon.events("schedule_invalid")}
	missing = sorted(set(broken) - set(invalid))
	assert not missing, f"no schedule_invalid log line for {missing}"
	assert all(len(error) > 10 for error in invalid.values()), invalid
	# Each reason is specific (not the consumer's catch-all for an unexpected exception).
	assert not [n for n, e in invalid.items() if "cannot be read" in e], invalid
	errors = {k.decode(): v.decode() for k, v in client.hgetall(KEYS.errors(SITE)).items()}
	assert set(errors) == set(broken), sorted(set(broken) ^ set(errors))
	status = daemon.request("status").data["sites"][SITE]
	assert set(status["invalid_schedules"]) == set(broken)
	assert client.zcard(NEXT_RUNS) == len(good)
	end = time.time() + 1
	wait_caught_up(client, good, end, 20)
	verdict = check_runs(queued_runs(client, good), good, start, end)
	STATS.verdict(bench.test_name, verdict)
	assert verdict.ok, verdict.summary()
	# Fixing a broken row brings it back.
	db.update_schedule("TS-CRON-RANGE", cron_string="*/5 * * * * *")
	assert daemon.request("create_task_schedule", "TS-CRON-RANGE", SITE).ok
	wait_for(lambda: client.zscore(NEXT_RUNS, "TS-CRON-RANGE") is not None, 10, what="the fixed schedule")
	assert client.hget(KEYS.errors(SITE), "TS-CRON-RANGE") is None
