"""btu.contracts.runs: a one-shot's Run At (a wall time in a zone) as a Unix second, checked against a
second-by-second reference across every 2026 daylight-saving change of five zones; overlap policies;
the texts the Desk and btu.api show."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from btu.contracts.runs import (
	RunAtError,
	aware_to_wall_time,
	describe_once,
	instant_to_wall_time,
	normalize_overlap,
	parse_wall_time,
	timestamp_to_wall_time,
	wall_time_to_timestamp,
)
from btu.contracts.schedule_rules import TimeZoneError, next_fire_time

ZONES = ["America/New_York", "Europe/London", "Australia/Sydney", "Australia/Lord_Howe", "America/Santiago"]


def transitions(zone: str, year: int = 2026) -> list[int]:
	"""Unix seconds at which the zone's UTC offset changes in ``year`` (found hour by hour, then bisected)."""
	tz = ZoneInfo(zone)
	start = int(datetime(year, 1, 1, tzinfo=timezone.utc).timestamp())
	end = int(datetime(year + 1, 1, 1, tzinfo=timezone.utc).timestamp())
	offset = lambda ts: datetime.fromtimestamp(ts, tz).utcoffset()  # noqa: E731
	found = []
	for hour in range(start, end, 3600):
		if offset(hour) != offset(hour + 3600):
			lo, hi = hour, hour + 3600
			while hi - lo > 1:
				mid = (lo + hi) // 2
				lo, hi = (mid, hi) if offset(mid) == offset(hour) else (lo, mid)
			found.append(hi)
	return found


def first_seconds(zone: str, around: int) -> dict[datetime, int]:
	"""Every wall time (whole minutes) shown in ``zone`` within 4 h of ``around`` -> its first Unix second."""
	tz = ZoneInfo(zone)
	seen: dict[datetime, int] = {}
	for ts in range(around - 4 * 3600, around + 4 * 3600, 60):
		seen.setdefault(datetime.fromtimestamp(ts, tz).replace(tzinfo=None), ts)
	return seen


def reference(wall: datetime, zone: str, around: int, seen: dict[datetime, int]) -> int:
	"""The first second whose wall clock in ``zone`` shows ``wall``; when none does (a skipped time),
	the first second after the jump (ISC cron's rule for fixed times)."""
	return seen.get(wall, around)


@pytest.mark.parametrize("zone", ZONES)
def test_wall_times_around_each_dst_change_match_a_second_by_second_reference(zone):
	tz = ZoneInfo(zone)
	changes = transitions(zone)
	assert changes, f"{zone} has daylight saving in 2026"
	for change in changes:
		before = datetime.fromtimestamp(change - 1, tz).replace(tzinfo=None)
		after = datetime.fromtimestamp(change, tz).replace(tzinfo=None)
		low, high = min(before, after), max(before, after)
		seen = first_seconds(zone, change)
		# every 10 minutes from 90 minutes before the jump's wall times to 90 minutes after
		wall = (low - timedelta(minutes=90)).replace(second=0)
		while wall <= high + timedelta(minutes=90):
			got = wall_time_to_timestamp(wall, zone)
			assert got == reference(wall, zone, change, seen), (zone, wall)
			wall += timedelta(minutes=10)


def test_a_skipped_time_means_the_first_instant_after_the_jump_as_for_a_fixed_cron_rule():
	for zone, wall in (("Europe/Paris", "2026-03-29 02:30:00"), ("America/New_York", "2026-03-08 02:30:00")):
		ts = wall_time_to_timestamp(wall, zone)
		day = datetime.fromisoformat(wall).replace(tzinfo=ZoneInfo(zone))
		rule = f"{day.minute} {day.hour} {day.day} {day.month} *"
		cron = next_fire_time(rule, zone, ts - 86400)
		assert cron is not None and int(cron.timestamp()) == ts, (zone, wall)


def test_a_repeated_time_means_its_first_occurrence():
	ts = wall_time_to_timestamp("2026-10-25 02:30:00", "Europe/Paris")
	assert datetime.fromtimestamp(ts, timezone.utc) == datetime(2026, 10, 25, 0, 30, tzinfo=timezone.utc)
	assert timestamp_to_wall_time(ts, "Europe/Paris") == datetime(2026, 10, 25, 2, 30)


def test_run_at_text_and_datetimes():
	assert parse_wall_time("2026-12-24 14:00") == datetime(2026, 12, 24, 14, 0)
	assert parse_wall_time(datetime(2026, 12, 24, 14, 0, 5, 999)) == datetime(2026, 12, 24, 14, 0, 5)
	for bad, message in (
		("", "run_at is empty"),
		(None, "run_at is empty"),
		("tomorrow", "is not a date and time"),
		("2026-12-24T14:00:00+01:00", "carries an offset"),
	):
		with pytest.raises(RunAtError, match=message):
			parse_wall_time(bad)
	with pytest.raises(TimeZoneError, match="Unknown time zone 'Mars/Base'"):
		wall_time_to_timestamp("2026-12-24 14:00", "Mars/Base")


def test_aware_datetimes_keep_their_zone_and_offsets_take_the_default():
	paris = datetime(2026, 12, 24, 14, 0, tzinfo=ZoneInfo("Europe/Paris"))
	assert aware_to_wall_time(paris, "UTC") == (datetime(2026, 12, 24, 14, 0), "Europe/Paris")
	offset = datetime(2026, 12, 24, 14, 0, tzinfo=timezone(timedelta(hours=1)))
	assert aware_to_wall_time(offset, "Asia/Tokyo") == (datetime(2026, 12, 24, 22, 0), "Asia/Tokyo")
	with pytest.raises(RunAtError, match="has no time zone"):
		aware_to_wall_time(datetime(2026, 12, 24, 14, 0), "UTC")


def test_overlap_policies():
	assert normalize_overlap(None) == normalize_overlap("") == normalize_overlap("allow") == "Allow"
	assert normalize_overlap(" Skip ") == normalize_overlap("skip") == "Skip"
	with pytest.raises(ValueError, match="overlap_policy 'Forbid' is unknown; expected one of Allow, Skip"):
		normalize_overlap("Forbid")


def test_descriptions():
	ts = wall_time_to_timestamp("2026-12-24 14:00:00", "Europe/Paris")
	assert describe_once(ts, "Europe/Paris") == "Once, at 2026-12-24 14:00:00 Europe/Paris (13:00:00 UTC)"
	assert describe_once(ts, "UTC") == "Once, at 2026-12-24 13:00:00 UTC"
	late = wall_time_to_timestamp("2026-12-24 23:30:00", "America/New_York")
	assert describe_once(late, "America/New_York").endswith("(2026-12-25 04:30:00 UTC)")


NEW_YORK = "America/New_York"


def test_a_run_at_in_the_spring_forward_gap_is_the_rules_instant_whichever_way_it_is_given():
	"""Issue 21 item 6: *Run once at* 2027-03-14 02:30 America/New_York (skipped: 02:00 -> 03:00
	EDT) and the rule ``30 2 14 3 *`` in that zone mean the same instant: the first after the jump,
	03:00 EDT = 07:00 UTC. As text (the form's Run At), as an aware datetime (the Desk's dialog and
	``btu.api.run_later(at=...)``), with either fold."""
	rule = int(next_fire_time("30 2 14 3 *", NEW_YORK, datetime(2027, 1, 1, tzinfo=timezone.utc)).timestamp())
	assert rule == int(datetime(2027, 3, 14, 7, 0, tzinfo=timezone.utc).timestamp())
	assert wall_time_to_timestamp("2027-03-14 02:30:00", NEW_YORK) == rule
	for fold in (0, 1):
		at = datetime(2027, 3, 14, 2, 30, fold=fold, tzinfo=ZoneInfo(NEW_YORK))
		wall, zone = aware_to_wall_time(at, "UTC")
		assert (wall, zone) == (datetime(2027, 3, 14, 2, 30), NEW_YORK)  # stored as written
		assert wall_time_to_timestamp(wall, zone) == rule  # read as the rule's instant (not 07:30 UTC)
	# The instant back to a wall time: the first instant after the jump reads 03:00 in the zone.
	assert instant_to_wall_time(rule, NEW_YORK) == (datetime(2027, 3, 14, 3, 0), NEW_YORK)
	assert describe_once(rule, NEW_YORK) == "Once, at 2027-03-14 03:00:00 America/New_York (07:00:00 UTC)"


def test_a_run_at_in_the_repeated_hour_is_its_first_pass_as_for_the_rule():
	"""2027-11-07 01:30 America/New_York happens twice (EDT 05:30 UTC, then EST 06:30 UTC): a Run At
	and the rule ``30 1 7 11 *`` both mean the first; an aware datetime of the second pass (fold=1,
	or an instant such as ``run_later(delay=...)`` lands on) keeps its instant, written in UTC."""
	first = int(datetime(2027, 11, 7, 5, 30, tzinfo=timezone.utc).timestamp())
	rule = next_fire_time("30 1 7 11 *", NEW_YORK, datetime(2027, 11, 1, tzinfo=timezone.utc))
	assert int(rule.timestamp()) == first == wall_time_to_timestamp("2027-11-07 01:30:00", NEW_YORK)
	at = datetime(2027, 11, 7, 1, 30, tzinfo=ZoneInfo(NEW_YORK))
	assert aware_to_wall_time(at, "UTC") == (datetime(2027, 11, 7, 1, 30), NEW_YORK)
	second_pass = at.replace(fold=1)
	wall, zone = aware_to_wall_time(second_pass, "UTC")
	assert (wall, zone) == (datetime(2027, 11, 7, 6, 30), "UTC")
	assert wall_time_to_timestamp(wall, zone) == first + 3600 == int(second_pass.timestamp())
	# Instants in both passes, back and forth.
	assert instant_to_wall_time(first, NEW_YORK) == (datetime(2027, 11, 7, 1, 30), NEW_YORK)
	assert instant_to_wall_time(first + 3600, NEW_YORK) == (datetime(2027, 11, 7, 6, 30), "UTC")
	for ts in range(first - 7200, first + 7200, 600):
		assert wall_time_to_timestamp(*instant_to_wall_time(ts, NEW_YORK)) == ts
