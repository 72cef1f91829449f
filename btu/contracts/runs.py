"""One-shot runs and overlap policies: what the Desk, ``btu.api``, the runner and the daemon agree on.

* A **one-shot** is a BTU Task Schedule row with ``run_frequency = "Once"`` and a ``run_at``
  Datetime: a wall-clock time read in the schedule's zone (``cron_timezone``, else BTU
  Configuration's), as a cron rule is. It fires once, through the daemon's exactly-once path.
* ``overlap_policy`` of a schedule: ``Allow`` (every fire time runs, the behaviour of every
  schedule before the policy existed, hence the default) or ``Skip`` (a fire time is skipped,
  with its reason recorded, while the schedule's previous run is still queued or running).

Frappe-free: the daemon imports it too.
"""

from __future__ import annotations

from datetime import datetime, timezone

from .schedule_rules import validate_timezone

ONCE = "Once"
OVERLAP_ALLOW = "Allow"
OVERLAP_SKIP = "Skip"
OVERLAP_POLICIES = (OVERLAP_ALLOW, OVERLAP_SKIP)
DEFAULT_OVERLAP = OVERLAP_ALLOW
# RQ job statuses that count as "the previous run is still queued or running".
ACTIVE_JOB_STATUSES = frozenset({"queued", "started", "deferred", "scheduled"})
UTC = timezone.utc


class RunAtError(ValueError):
	"""A one-shot's time cannot be read; the message says what was wrong."""


def parse_wall_time(value: object, what: str = "run_at") -> datetime:
	"""A naive wall-clock datetime from a datetime or an ISO-8601 / Frappe string ('YYYY-MM-DD HH:MM[:SS[.f]]')."""
	if isinstance(value, datetime):
		wall = value
	elif isinstance(value, str) and value.strip():
		text = value.strip()
		try:
			wall = datetime.fromisoformat(text)
		except ValueError:
			raise RunAtError(
				f"{what} {value!r} is not a date and time; expected 'YYYY-MM-DD HH:MM:SS'."
			) from None
	else:
		raise RunAtError(f"{what} is empty; expected a date and time such as '2026-12-24 14:00:00'.")
	if wall.tzinfo is not None:
		raise RunAtError(
			f"{what} {value!r} carries an offset; expected a wall-clock time read in the schedule's zone."
		)
	return wall.replace(microsecond=0)


def wall_time_to_timestamp(value: object, zone: str) -> int:
	"""The UTC Unix second at which the wall-clock time ``value`` occurs in ``zone``.

	Daylight saving as for a cron rule with a fixed minute and hour (ISC cron): a repeated
	wall time means its first occurrence; a skipped one (spring forward) means the first
	instant after the jump. Raises RunAtError or TimeZoneError.
	"""
	wall = parse_wall_time(value)
	tz = validate_timezone(zone)
	first = wall.replace(tzinfo=tz, fold=0)
	if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall:
		return int(first.timestamp())  # exists (a repeated time: fold 0 is its first occurrence)
	# Skipped: fold=0 reads it with the offset before the jump, fold=1 with the one after; the
	# jump lies between the two instants.
	low = min(first.timestamp(), wall.replace(tzinfo=tz, fold=1).timestamp())
	high = max(first.timestamp(), wall.replace(tzinfo=tz, fold=1).timestamp())
	base = datetime.fromtimestamp(low, UTC).astimezone(tz).utcoffset()
	lo, hi = int(low), int(high)
	while hi - lo > 1:
		mid = (lo + hi) // 2
		if datetime.fromtimestamp(mid, UTC).astimezone(tz).utcoffset() == base:
			lo = mid
		else:
			hi = mid
	return hi


def timestamp_to_wall_time(ts: float, zone: str) -> datetime:
	"""The naive wall-clock time of Unix time ``ts`` in ``zone`` (whole seconds)."""
	return datetime.fromtimestamp(int(ts), validate_timezone(zone)).replace(tzinfo=None)


def instant_to_wall_time(ts: float, zone: str) -> tuple[datetime, str]:
	"""(wall time, zone) naming the Unix second ``ts`` (whole seconds) as a Run At, so that
	``wall_time_to_timestamp`` gives ``ts`` back: its wall time in ``zone``, or, for an instant of
	the second pass of a repeated hour (which a wall time in that zone means the first pass of), its
	wall time in UTC with zone "UTC"."""
	wall = timestamp_to_wall_time(ts, zone)
	if wall_time_to_timestamp(wall, zone) == int(ts):
		return wall, zone
	return datetime.fromtimestamp(int(ts), UTC).replace(tzinfo=None), "UTC"


def aware_to_wall_time(at: datetime, default_zone: str) -> tuple[datetime, str]:
	"""(wall time, zone) for an aware datetime: its own IANA zone when it has one (a ZoneInfo),
	else ``default_zone`` (a fixed offset such as ``+01:00`` names no zone).

	With a zone, the wall time is kept as written and read by the one daylight saving rule of
	``wall_time_to_timestamp`` (as a cron rule is): 02:30 on a spring-forward night is the first
	instant after the jump, not Python's reading with the offset before it (an hour later). The
	second pass of a repeated hour (``fold=1``) is an instant the wall time cannot name: it is
	kept as that instant, in UTC."""
	if at.tzinfo is None or at.utcoffset() is None:
		raise RunAtError(
			f"at={at.isoformat()} has no time zone; pass an aware datetime "
			"(e.g. datetime(2026, 12, 24, 14, 0, tzinfo=ZoneInfo('Europe/Paris'))) or delay= in seconds."
		)
	key = getattr(at.tzinfo, "key", None)
	if not key:
		validate_timezone(default_zone)
		return instant_to_wall_time(at.timestamp(), default_zone)
	tz = validate_timezone(key)
	wall = at.replace(tzinfo=None, fold=0, microsecond=0)
	if at.fold and _repeated(wall, tz):
		return instant_to_wall_time(at.timestamp(), key)
	return wall, key


def _repeated(wall: datetime, tz) -> bool:
	"""Whether the naive ``wall`` occurs twice in ``tz`` (the hour a fall-back repeats)."""
	first, second = wall.replace(tzinfo=tz, fold=0), wall.replace(tzinfo=tz, fold=1)
	if first.utcoffset() == second.utcoffset():
		return False
	return first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall


def normalize_overlap(value: object) -> str:
	"""'Allow' for an empty value (rows older than the policy); raise ValueError for an unknown one."""
	text = (str(value).strip() if value is not None else "") or DEFAULT_OVERLAP
	for policy in OVERLAP_POLICIES:
		if text.lower() == policy.lower():
			return policy
	raise ValueError(f"overlap_policy {value!r} is unknown; expected one of {', '.join(OVERLAP_POLICIES)}.")


def describe_once(ts: float, zone: str) -> str:
	"""'Once, at 2026-12-24 14:00:00 Europe/Paris (13:00:00 UTC)'."""
	local = timestamp_to_wall_time(ts, zone)
	utc = datetime.fromtimestamp(int(ts), UTC).replace(tzinfo=None)
	if utc == local:
		return f"Once, at {local:%Y-%m-%d %H:%M:%S} {zone}"
	day = "" if utc.date() == local.date() else f"{utc:%Y-%m-%d} "
	return f"Once, at {local:%Y-%m-%d %H:%M:%S} {zone} ({day}{utc:%H:%M:%S} UTC)"


__all__ = [
	"ACTIVE_JOB_STATUSES",
	"DEFAULT_OVERLAP",
	"ONCE",
	"OVERLAP_ALLOW",
	"OVERLAP_POLICIES",
	"OVERLAP_SKIP",
	"RunAtError",
	"aware_to_wall_time",
	"describe_once",
	"instant_to_wall_time",
	"normalize_overlap",
	"parse_wall_time",
	"timestamp_to_wall_time",
	"wall_time_to_timestamp",
]
