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
