"""The scheduler's plan for a batch of due runs (fire_plan.py), decided without Redis: what each run
becomes and where its schedule's next fire time moves."""

from __future__ import annotations

from btu.contracts.runs import OVERLAP_SKIP
from btu.scheduler_daemon.fire_plan import Decision, collapsed_fire_times, missed_fire_time, plan_batch
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


# --- a change of rule (issue 21): only the current rule's fire times run


def test_latest_fire_between_agrees_with_stepping_forward():
	rules = [
		("* * * * *", "UTC"),
		("*/7 * * * *", "UTC"),
		("0 9 * * 1-5", "Europe/Paris"),
		("30 2 * * *", "America/New_York"),  # skipped once a year (spring forward)
		("*/20 * * * * *", "UTC"),
	]
	for cron, zone in rules:
		s = ScheduleSpec(
			site="a", name="X", task="T", cron=cron, timezone=zone, queue="q",
			function_string="m.f", kwargs={}, timeout=60,
		)  # fmt: skip
		for low, high in [(T0, T0 + 3600), (T0 - 86400 * 3, T0), (T0 + 1, T0 + 59), (1805000000, 1805090000)]:
			expected, t = None, s.next_fire_after(low - 1)
			while t is not None and t <= high:
				expected, t = t, s.next_fire_after(t)
			assert s.latest_fire_between(low, high) == expected, (cron, low, high)


def test_fires_at_says_whether_a_time_is_the_rules():
	assert spec("E", "*/2 * * * *").fires_at(T0 + 2 * MINUTE)
	assert not spec("E", "*/2 * * * *").fires_at(T0 + MINUTE)
	assert not spec("E", "*/2 * * * *").fires_at(T0 + 2 * MINUTE + 1)
	assert spec("O", "", run_at=T0 + 5).fires_at(T0 + 5) and not spec("O", "", run_at=T0 + 5).fires_at(T0)


def test_a_due_fire_time_the_new_rule_lacks_gives_way_to_its_latest_missed_one():
	new = spec("E", "*/2 * * * *")
	now = T0 + 7 * MINUTE + 10
	# The old rule's odd minute is dropped; the new rule's latest fire time within the grace runs.
	assert missed_fire_time(new, T0 + 5 * MINUTE, now, 3600) == T0 + 6 * MINUTE
	# A due fire time the new rule has too is kept (an edit that keeps the times loses no run).
	assert missed_fire_time(new, T0 + 4 * MINUTE, now, 3600) == T0 + 4 * MINUTE
	# Nothing of the new rule within the grace: nothing runs instead.
	assert missed_fire_time(spec("H", "0 * * * *"), T0 + 5 * MINUTE, now, 5 * MINUTE) is None
	# A kept time older than the grace is not kept: the latest one within it runs.
	assert missed_fire_time(new, T0, now, 3 * MINUTE) == T0 + 6 * MINUTE
	# A one-shot whose time moved: its new run_at if it is within the grace.
	assert missed_fire_time(spec("O", "", run_at=T0 + 6 * MINUTE), T0, now, 3600) == T0 + 6 * MINUTE


def test_the_scheduler_never_enqueues_a_fire_time_its_current_rule_lacks():
	now = T0 + 7 * MINUTE + 10
	odd = T0 + 5 * MINUTE
	specs = [spec("STALE", "*/2 * * * *"), spec("RAN", "*/2 * * * *")]
	plan = plan_batch([("STALE", odd), ("RAN", odd)], [odd, odd], specs, [False, True], {}, now, 3600)
	assert plan[0].decision is Decision.NOT_IN_RULE
	assert (
		plan[0].next_fire == T0 + 6 * MINUTE
	)  # its latest missed fire time: the next pass checks its marker
	assert plan[1].decision is Decision.ALREADY_ENQUEUED  # it did run (under the rule of its time)
	assert plan[1].next_fire == T0 + 8 * MINUTE
	# Beyond the grace as well: it moves to the rule's next fire time.
	plan = plan_batch([("STALE", odd)], [odd], [specs[0]], [False], {}, now, 30)
	assert (plan[0].decision, plan[0].next_fire) == (Decision.NOT_IN_RULE, T0 + 8 * MINUTE)
