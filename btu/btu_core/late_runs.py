"""Runs that reach a worker late: the start deadline, and one late run per backlog.

A scheduled run waits in its RQ queue until a worker takes it. When no worker listened for a while,
the queue holds one run per fire time it missed; without a rule they would all run back to back
once a worker comes. The worker, as it starts a scheduled run, decides here:

* **Start deadline.** A run that starts more than the schedule's start deadline after its fire time
  is not executed (Kubernetes' ``startingDeadlineSeconds``). The schedule's own value, else BTU
  Configuration's default; 0 there means no deadline.
* **One run per backlog.** A run is *late* when its rule's next fire time after its own has
  already come. The first late run of a schedule executes and records its start
  (``btu:<site>:late_run:<schedule>``); every run of that schedule already waiting in the queue when
  it started, late or not, is covered by it and skipped. Runs queued after that start are judged
  afresh. (Covering the newest instead, as a coalescing queue would, starves a schedule whose queue
  is always a little behind: each run would find a newer one waiting.)

A skipped run gets a Task Log with status Skipped that says why and how late it was. Redis
trouble never stops a run here: the claim is only about not repeating late runs, so when Redis
cannot be read the run goes on (and a warning is logged).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from btu.contracts.redis_keys import RedisKeys

CLAIM_TTL_SECONDS = 86_400
NextAfter = Callable[[float], "int | None"]  # a schedule's next fire time after t (fire_times.FireTimes)


@dataclass(frozen=True)
class StartDecision:
	"""What to do with a scheduled run as a worker starts it."""

	delay: float  # seconds from its fire time to now
	skip_reason: str | None = None  # None: run it
	late: bool = False  # its rule's next fire time has come already (it executes as the backlog's one)


def effective_deadline(schedule_value: Any, default_value: Any) -> int:
	"""The start deadline in seconds (0: none): the schedule's own when set, else the default."""
	own = _seconds(schedule_value)
	return own if own > 0 else _seconds(default_value)


def _seconds(value: Any) -> int:
	try:
		return max(0, int(value or 0))
	except (TypeError, ValueError):
		return 0


def describe_delay(seconds: float) -> str:
	"""``2 h 3 min 4 s`` style, for Task Logs."""
	whole = int(round(seconds))
	hours, rest = divmod(whole, 3600)
	minutes, secs = divmod(rest, 60)
	parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", f"{secs} s"]
	return " ".join(p for p in parts if p)


def utc_text(ts: float) -> str:
	return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def successor_has_come(next_after: NextAfter | None, fire_ts: float, now: float) -> bool:
	"""True when the schedule's next fire time after ``fire_ts`` is not in the future (a one-shot has
	no ``next_after``)."""
	if next_after is None:
		return False
	try:
		following = next_after(fire_ts)
	except Exception:  # noqa: BLE001 - a rule the daemon refused: judge by the deadline alone
		return False
	return following is not None and following <= now


def decide_start(
	*,
	fire_ts: float,
	now: float,
	deadline: int,
	next_after: NextAfter | None,
	enqueued_ts: float | None,
	claim: "LateRunClaim | None",
) -> StartDecision:
	"""The decision for one run; ``claim`` records and reads the schedule's latest late run."""
	delay = max(0.0, now - fire_ts)
	if deadline and delay > deadline:
		return StartDecision(
			delay,
			f"Not run: it reached a worker {describe_delay(delay)} after its fire time "
			f"({utc_text(fire_ts)}), beyond its start deadline of {describe_delay(deadline)}.",
		)
	late = successor_has_come(next_after, fire_ts, now)
	if claim is None:
		return StartDecision(delay, late=late)
	queued = enqueued_ts if enqueued_ts is not None else fire_ts
	covering = claim.take(now, fire_ts, queued) if late else claim.covering(queued)
	if covering is None:
		return StartDecision(delay, late=late)
	started, covering_fire = covering
	return StartDecision(
		delay,
		f"Not run: it waited {describe_delay(delay)} for a worker, and the late run of "
		f"{utc_text(covering_fire)}, started at {utc_text(started)}, covered it (when runs pile up "
		"behind a missing worker, only one of them runs).",
	)


class LateRunClaim:
	"""The schedule's latest late run, in Redis (``RedisKeys.late_run``), read and written atomically."""

	def __init__(self, connection: Any, keys: RedisKeys, site: str, schedule: str) -> None:
		self.connection = connection
		self.key = keys.late_run(site, schedule)

	def covering(self, enqueued_ts: float) -> tuple[float, float] | None:
		"""The late run that started after this run was queued, if any (read only: a run on time)."""
		found = _parse_claim(self.connection.get(self.key))
		return found if found is not None and found[0] >= enqueued_ts else None

	def take(self, now: float, fire_ts: float, enqueued_ts: float) -> tuple[float, float] | None:
		"""Record this run as the schedule's late run, unless a late run that started after this one
		was queued covers it: then return that run's (start, fire time) and write nothing."""
		from redis.exceptions import WatchError

		for _attempt in range(5):
			with self.connection.pipeline() as pipe:
				try:
					pipe.watch(self.key)
					covering = _parse_claim(pipe.get(self.key))
					if covering is not None and covering[0] >= enqueued_ts:
						pipe.unwatch()
						return covering
					pipe.multi()
					pipe.set(self.key, f"{now:.3f} {fire_ts:.0f}", ex=CLAIM_TTL_SECONDS)
					pipe.execute()
					return None
				except WatchError:
					continue
		return None  # contended five times: let it run rather than lose it


def _parse_claim(raw: Any) -> tuple[float, float] | None:
	if not raw:
		return None
	text = raw.decode() if isinstance(raw, bytes) else str(raw)
	try:
		started, fire = text.split()
		return float(started), float(fire)
	except ValueError:
		return None
