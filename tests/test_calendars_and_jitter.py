"""Business calendars and jitter (btu.contracts.calendars, .jitter, .fire_times): each fire-time
sequence is checked against a brute-force reading of its definition, and the spec the daemon plans
with agrees with what the Desk computes from the same row."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from btu.contracts import jitter
from btu.contracts.calendars import NEXT_WORKING_DAY, SKIP, BusinessCalendar, CalendarError, normalize_policy
from btu.contracts.fire_times import FireTimes
from btu.contracts.pending import timing_of_row
from btu.contracts.schedule_rules import next_fire_times
from btu.scheduler_daemon.specs import ScheduleInvalid, ScheduleSpec, spec_from_row

UTC = timezone.utc
NY = "America/New_York"


def ts(text: str, zone: str = "UTC") -> int:
	return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp())


def wall(stamp: int, zone: str = "UTC") -> str:
	return datetime.fromtimestamp(stamp, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def sequence(times: FireTimes, after: int, count: int, zone: str | None = None) -> list[str]:
	return [wall(t, zone or times.zone) for t in times.next_times(after, count)]


def calendar(days: list[str], policy: str = SKIP) -> BusinessCalendar:
	return BusinessCalendar(tuple(sorted(days)), policy)


# Christmas 2026 is a Friday; the weekend after it is 26-27 December.
CHRISTMAS_WEEKEND = ["2026-12-25", "2026-12-26", "2026-12-27"]


def test_skip_leaves_out_fire_times_on_holidays_in_the_schedules_zone():
	times = FireTimes("0 9 * * *", NY, calendar(CHRISTMAS_WEEKEND))
	assert sequence(times, ts("2026-12-24 10:00", NY), 3) == [
		"2026-12-28 09:00",
		"2026-12-29 09:00",
		"2026-12-30 09:00",
	]
	# 23:00 in New York on the 24th is the 25th in UTC: the schedule's zone decides, so it runs.
	late = FireTimes("0 23 * * *", NY, calendar(["2026-12-25"]))
	assert sequence(late, ts("2026-12-24 12:00", NY), 2) == ["2026-12-24 23:00", "2026-12-26 23:00"]


def test_skip_of_a_rule_firing_every_minute_jumps_over_the_whole_day():
	times = FireTimes("* * * * *", "UTC", calendar(["2026-12-25"]))
	assert sequence(times, ts("2026-12-24 23:58"), 2) == ["2026-12-24 23:59", "2026-12-26 00:00"]


def test_next_working_day_moves_a_holiday_fire_time_past_the_whole_run_of_holidays():
	monthly = FireTimes("0 9 25 * *", NY, calendar(CHRISTMAS_WEEKEND, NEXT_WORKING_DAY))
	assert sequence(monthly, ts("2026-12-01 00:00", NY), 3) == [
		"2026-12-28 09:00",
		"2027-01-25 09:00",
		"2027-02-25 09:00",
	]
	# Asked from inside the run of holidays, or on the working day before the moved time: the same.
	assert sequence(monthly, ts("2026-12-26 12:00", NY), 1) == ["2026-12-28 09:00"]
	assert sequence(monthly, ts("2026-12-28 08:59", NY), 1) == ["2026-12-28 09:00"]
	assert sequence(monthly, ts("2026-12-28 09:00", NY), 1) == ["2027-01-25 09:00"]


def test_moved_times_meeting_the_working_days_own_are_one_run():
	daily = FireTimes("0 9 * * *", "UTC", calendar(CHRISTMAS_WEEKEND, NEXT_WORKING_DAY))
	assert sequence(daily, ts("2026-12-24 10:00"), 3) == [
		"2026-12-28 09:00",
		"2026-12-29 09:00",
		"2026-12-30 09:00",
	]


def test_moved_times_keep_their_wall_times_in_order_on_the_working_day():
	# 23:00 on Saturday and 01:00 on Sunday both land on Monday: 01:00 comes first there.
	rule = FireTimes("0 1,23 * * *", "UTC", calendar(["2026-12-26", "2026-12-27"], NEXT_WORKING_DAY))
	assert sequence(rule, ts("2026-12-25 23:30"), 4) == [
		"2026-12-28 01:00",
		"2026-12-28 23:00",
		"2026-12-29 01:00",
		"2026-12-29 23:00",
	]
	assert sequence(rule, ts("2026-12-28 00:30"), 1) == ["2026-12-28 01:00"]
	assert sequence(rule, ts("2026-12-28 01:00"), 1) == ["2026-12-28 23:00"]


def test_a_move_across_the_start_of_daylight_saving_keeps_the_wall_time():
	# 2026-03-08 is when New York moves to EDT: Saturday 09:00 EST moves to Monday 09:00 EDT.
	rule = FireTimes("0 9 * * 6", NY, calendar(["2026-03-07", "2026-03-08"], NEXT_WORKING_DAY))
	(moved,) = rule.next_times(ts("2026-03-06 00:00", NY), 1)
	assert wall(moved, NY) == "2026-03-09 09:00" and wall(moved) == "2026-03-09 13:00"


def brute_force(cron: str, zone: str, days: set[date], policy: str, after: int, count: int) -> list[int]:
	"""The calendar's definition read literally: every fire time of the rule from 60 days before,
	skipped or moved, de-duplicated, sorted."""
	tz = ZoneInfo(zone)
	start = datetime.fromtimestamp(after, UTC) - timedelta(days=60)
	found: set[int] = set()
	for instant in next_fire_times(cron, zone, start, 3000):
		local = instant.astimezone(tz)
		if local.date() not in days:
			found.add(int(instant.timestamp()))
		elif policy == NEXT_WORKING_DAY:
			target = local.date() + timedelta(days=1)
			while target in days:
				target += timedelta(days=1)
			moved = datetime.combine(target, local.time().replace(tzinfo=None), tzinfo=tz)
			found.add(int(moved.timestamp()))
	return sorted(t for t in found if t > after)[:count]


@pytest.mark.parametrize("policy", [SKIP, NEXT_WORKING_DAY])
@pytest.mark.parametrize(
	"cron", ["0 9 * * *", "30 8,17 * * 1-5", "0 */6 * * *", "0 12 1,15 * *", "15 3 * * 0"]
)
def test_every_sequence_agrees_with_the_definition(cron, policy):
	chooser = random.Random(f"{cron}|{policy}")
	base = date(2026, 11, 20)
	days = {base + timedelta(days=chooser.randrange(0, 50)) for _ in range(18)}
	times = FireTimes(cron, NY, calendar([d.isoformat() for d in days], policy))
	for _ in range(6):
		after = ts("2026-11-25 00:00", NY) + chooser.randrange(0, 30 * 86400)
		expected = brute_force(cron, NY, days, policy, after, 8)
		assert times.next_times(after, 8) == expected, (cron, policy, wall(after, NY))


def test_jitter_is_the_same_everywhere_bounded_and_keeps_the_order():
	key = jitter.identity("site1.localhost", "TS-000001")
	a = FireTimes("* * * * *", "UTC", jitter=300, key=key)
	b = FireTimes("* * * * *", "UTC", jitter=300, key=key)  # another daemon, another host
	start = ts("2026-12-07 10:00")
	runs = a.next_times(start, 240)
	assert runs == b.next_times(start, 240)
	# The rule's 10:00 run is still ahead at 10:00 when its delay is not 0.
	first = start if jitter.delay(key, start, 300, FireTimes("* * * * *", "UTC").next_after) else start + 60
	rule = [first + 60 * n for n in range(240)]
	delays = [run - planned for run, planned in zip(runs, rule)]
	assert all(0 <= d <= 59 for d in delays)  # every minute: the delay stays before the next one
	assert len(set(delays)) > 30  # spread, not a constant
	assert runs == sorted(set(runs))
	assert [a.rule_time(run) for run in runs] == rule
	other_site = FireTimes(
		"* * * * *", "UTC", jitter=300, key=jitter.identity("site2.localhost", "TS-000001")
	)
	assert other_site.next_times(start, 240) != runs


def test_jitter_from_any_instant_agrees_with_the_definition():
	key = jitter.identity("s", "TS-9")
	times = FireTimes("0 * * * *", "UTC", jitter=1800, key=key)
	plain = FireTimes("0 * * * *", "UTC")
	start = ts("2026-12-07 00:00")
	expected = sorted(
		t + jitter.delay(key, t, 1800, plain.next_after) for t in plain.next_times(start - 7200, 60)
	)
	chooser = random.Random(7)
	for _ in range(50):
		after = start + chooser.randrange(0, 40 * 3600)
		assert times.next_after(after) == min(t for t in expected if t > after)


def test_jitter_after_a_calendar_and_a_spec_that_fires_at_its_times():
	row = {
		"name": "TS-000042",
		"enabled": 1,
		"task": "BTU-00001",
		"task_found": "BTU-00001",
		"task_docstatus": 1,
		"function_string": "btu.scheduler_daemon.demo_tasks.record_run",
		"run_frequency": "Cron Style",
		"cron_string": "0 9 * * *",
		"cron_timezone": NY,
		"holiday_list_doctype": "BTU Holiday List",
		"holiday_list": "Office <b>2026</b>",
		"on_holiday": "Next Working Day",
		"holidays": [date(2026, 12, 25), "2026-12-26", "2026-12-27"],
		"jitter_seconds": "120",
	}
	spec = spec_from_row("site1.localhost", row, "UTC")
	assert spec.holidays == ("2026-12-25", "2026-12-26", "2026-12-27") and spec.jitter == 120
	again = ScheduleSpec.from_json(spec.to_json())
	assert again == spec and again.to_json() == spec.to_json()
	first = spec.next_fire_after(ts("2026-12-24 10:00", NY))
	assert 0 <= first - ts("2026-12-28 09:00", NY) <= 120
	assert spec.fires_at(first) and not spec.fires_at(first + 1)
	assert spec.latest_fire_between(first - 3600, first + 60) == first
	# What the Desk and `btu-scheduler list` compare with the daemon's timing: the same text.
	assert timing_of_row(row, "UTC") == spec.timing
	assert spec.timing == (
		"0 9 * * *, holidays to the next working day (BTU Holiday List Office <b>2026</b>), "
		"jitter up to 120 s|America/New_York"
	)
	plain = spec_from_row("site1.localhost", {**row, "holiday_list": "", "jitter_seconds": 0}, "UTC")
	assert plain.timing == "0 9 * * *|America/New_York"  # unchanged for every schedule without them


@pytest.mark.parametrize(
	("changes", "message"),
	[
		({"jitter_seconds": "soon"}, "Jitter 'soon' is not a whole number of seconds"),
		({"jitter_seconds": 4000}, "Jitter must be from 0 to 3600 seconds, got 4000"),
		({"on_holiday": "Tomorrow"}, "On Holiday 'Tomorrow' is not one of Skip, Next Working Day"),
		({"holiday_list_doctype": "ToDo"}, "Holiday List Type 'ToDo' is not one of"),
		({"holidays": ["25/12/2026"]}, "holiday date '25/12/2026' is not a date"),
		(
			{"holidays_error": "its BTU Holiday List 'Gone' does not exist"},
			"its BTU Holiday List 'Gone' does not exist",
		),
	],
)
def test_a_bad_calendar_or_jitter_is_refused_with_its_reason(changes, message):
	row = {
		"name": "TS-1",
		"enabled": 1,
		"task": "BTU-1",
		"task_found": "BTU-1",
		"task_docstatus": 1,
		"function_string": "a.b",
		"cron_string": "0 9 * * *",
		"holiday_list": "Gone",
		**changes,
	}
	with pytest.raises(ScheduleInvalid, match=message.replace("(", r"\(")):
		spec_from_row("s", row, "UTC")


def test_a_one_shot_ignores_calendar_and_jitter():
	row = {
		"name": "TS-1",
		"enabled": 1,
		"task": "BTU-1",
		"task_found": "BTU-1",
		"task_docstatus": 1,
		"function_string": "a.b",
		"run_frequency": "Once",
		"run_at": "2026-12-25 09:00:00",
		"holiday_list": "Christmas",
		"holidays": ["2026-12-25"],
		"jitter_seconds": 600,
	}
	spec = spec_from_row("s", row, "UTC")
	assert spec.run_at == ts("2026-12-25 09:00") and spec.jitter == 0 and not spec.holiday_list
	assert timing_of_row(row, "UTC") == spec.timing


def test_policy_names_are_read_in_any_case():
	assert normalize_policy(" next working day ") == NEXT_WORKING_DAY
	assert normalize_policy("") == SKIP
	with pytest.raises(CalendarError):
		normalize_policy("later")
