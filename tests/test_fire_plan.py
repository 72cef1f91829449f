"""The scheduler's plan for a batch of due runs (fire_plan.py), decided without Redis: what each run
becomes and where its schedule's next fire time moves."""

from __future__ import annotations

from btu.contracts.runs import OVERLAP_SKIP
from btu.scheduler_daemon.fire_plan import Decision, collapsed_fire_times, plan_batch
from btu.scheduler_daemon.specs import ScheduleSpec

MINUTE = 60
T0 = 1_800_000_000 - 1_800_000_000 % 3600  # on the hour (UTC)


def spec(name: str, cron: str = "* * * * *", **extra) -> ScheduleSpec:
	return ScheduleSpec(
		site="a", name=name, task="BTU-1", cron=cron, timezone="UTC", queue="default",
		function_string="m.f", kwargs={}, timeout=60, **extra,
	)  # fmt: skip


def test_each_due_run_gets_one_decision_and_a_next_fire_time():
	due = [("ON-TIME", T0), ("MARKED", T0), ("GONE", T0), ("BUSY", T0), ("ALLOW", T0)]
	specs = [
		spec("ON-TIME"),
		spec("MARKED"),
		None,
		spec("BUSY", overlap=OVERLAP_SKIP),
		spec("ALLOW"),
	]
	previous = {"BUSY": ("btu-job-1", "started")}
	now = T0 + 0.25
	plan = plan_batch(due, [T0] * 5, specs, [False, True, False, False, False], previous, now, 3600)
	assert [(r.name, r.decision) for r in plan] == [
		("ON-TIME", Decision.ENQUEUE),
		("MARKED", Decision.ALREADY_ENQUEUED),
		("GONE", Decision.GONE),
		("BUSY", Decision.OVERLAP),
		("ALLOW", Decision.ENQUEUE),
	]
	assert [r.next_fire for r in plan] == [T0 + MINUTE, T0 + MINUTE, None, T0 + MINUTE, T0 + MINUTE]
	assert plan[3].previous == ("btu-job-1", "started")
	assert plan[0].collapsed == 0 and abs(plan[0].lateness - 0.25) < 1e-9


def test_a_previous_run_only_stops_a_schedule_whose_policy_is_skip():
	plan = plan_batch([("ALLOW", T0)], [T0], [spec("ALLOW")], [False], {"ALLOW": ("j", "queued")}, T0, 60)
	assert plan[0].decision is Decision.ENQUEUE


def test_a_run_beyond_misfire_grace_is_skipped_and_the_latest_fire_time_within_it_becomes_the_catch_up():
	# Fired every minute; the daemon comes back 10 minutes late with a grace of 3 minutes.
	now = T0 + 10 * MINUTE + 5
	plan = plan_batch([("LATE", T0)], [T0], [spec("LATE")], [False], {}, now, 3 * MINUTE)
	assert plan[0].decision is Decision.MISFIRE
	assert plan[0].next_fire == T0 + 8 * MINUTE  # the first fire time within the grace: run next pass
	# Within the grace: one run for the fire time, standing for the ones missed since.
	plan = plan_batch([("LATE", T0)], [T0], [spec("LATE")], [False], {}, now, 3600)
	assert plan[0].decision is Decision.ENQUEUE
	assert plan[0].collapsed == 10 == collapsed_fire_times(spec("LATE"), T0, now)
	assert plan[0].next_fire == T0 + 11 * MINUTE


def test_a_remembered_earlier_fire_time_is_the_one_run_and_a_one_shot_leaves_next_runs():
	once = spec("ONCE", run_at=T0)
	plan = plan_batch(
		[("CATCH-UP", T0 + MINUTE), ("ONCE", T0)],
		[T0, T0],
		[spec("CATCH-UP"), once],
		[False, False],
		{},
		T0 + MINUTE + 1,
		3600,
	)
	assert [(r.decision, r.fire_ts, r.score) for r in plan] == [
		(Decision.ENQUEUE, T0, T0 + MINUTE),
		(Decision.ENQUEUE, T0, T0),
	]
	assert plan[0].next_fire == T0 + 2 * MINUTE and plan[1].next_fire is None
