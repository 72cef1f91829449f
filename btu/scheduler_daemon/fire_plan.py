"""What to do with each due run of a batch, decided without Redis (the scheduler's ordinary path).

The scheduler reads, inside its transaction, which runs are already marked and which previous runs are
still active; ``plan_batch`` then decides per run: enqueue it, or skip it (already enqueued, more than
``misfire_grace`` late, its previous run still active under overlap policy Skip), or drop a schedule
that is gone, and where its next fire time moves. The scheduler writes the plan in one transaction and
records it (counters, metrics, log lines).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from btu.contracts.runs import OVERLAP_SKIP

from .specs import ScheduleSpec


class Decision(Enum):
	ENQUEUE = "enqueue"
	ALREADY_ENQUEUED = "already enqueued"  # its marker holds a job id: a crash, a retry or another daemon
	MISFIRE = "more than misfire_grace late"
	OVERLAP = "previous run still queued or running"
	GONE = "schedule gone"  # no spec in Redis: removed from next_runs
	NOT_IN_RULE = "not a fire time of its current rule"  # never runs (issue 21): moved by the rule


@dataclass(frozen=True)
class PlannedRun:
	name: str
	score: int  # its score in next_runs when read (the move is conditional on it)
	fire_ts: int  # the fire time it runs for (an earlier remembered one when catching up)
	decision: Decision
	next_fire: int | None  # its new score; None = leaves next_runs
	spec: ScheduleSpec | None
	lateness: float = 0.0
	collapsed: int = 0  # later fire times before now this run stands for (not run again)
	previous: tuple[str, str] | None = None  # (job id, RQ status) of the active previous run


def collapsed_fire_times(spec: ScheduleSpec, fire_ts: int, now: float) -> int:
	"""How many later fire times (before now) a late run stands for (they are not run again)."""
	if now - fire_ts < 1:
		return 0
	# Step with the cached next_fire_after and stop at the first fire time after now: a run a second
	# late costs one cache hit (computing 1000 fire times per run took ~25 ms, so a 1000-run batch
	# outlived the lease and its transaction was retried forever).
	count, after = 0, fire_ts
	while count < 1000:
		found = spec.next_fire_after(after)
		if found is None or found > now:
			break
		count, after = count + 1, found
	return count


def missed_fire_time(spec: ScheduleSpec, old_due: int, now: float, grace: float) -> int | None:
	"""After a change of rule (or zone) that came when the old rule's pending fire time ``old_due``
	had fallen due: the fire time to run instead, once, or None.

	``old_due`` itself when the new rule contains it and it is within the grace (an edit that keeps
	the times loses no due run); else the new rule's latest fire time within the grace (the misfire
	catch-up of the current rule); else None (the new rule's next fire time is all that is left).
	The caller still checks the marker: a fire time that already ran never runs again."""
	oldest = now - grace
	if oldest <= old_due <= now and spec.fires_at(old_due):
		return old_due
	return spec.latest_fire_between(oldest, now)


def plan_run(
	name: str,
	score: int,
	fire_ts: int,
	spec: ScheduleSpec | None,
	marked: bool,
	previous: tuple[str, str] | None,
	now: float,
	grace: float,
) -> PlannedRun:
	if spec is None:
		return PlannedRun(name, score, fire_ts, Decision.GONE, None, None)
	following = spec.next_fire_after(max(now, score))
	lateness = now - fire_ts
	if marked:
		return PlannedRun(name, score, fire_ts, Decision.ALREADY_ENQUEUED, following, spec, lateness)
	if not spec.fires_at(fire_ts):
		# Its rule changed and this old fire time was left behind (the upsert replaces it; a time
		# written before that rule, or by an older daemon): it never runs. The current rule's latest
		# missed time within the grace is next (the next pass checks its marker), else its next one.
		missed = missed_fire_time(spec, fire_ts, now, grace)
		next_fire = missed if missed is not None and missed < (following or missed + 1) else following
		return PlannedRun(name, score, fire_ts, Decision.NOT_IN_RULE, next_fire, spec, lateness)
	if lateness > grace:
		# A later missed fire time still within the grace becomes the one catch-up run (fired on the
		# next pass); only the runs older than the grace are dropped.
		within = spec.next_fire_after(max(fire_ts, now - grace))
		next_fire = within if within is not None and within <= now else following
		return PlannedRun(name, score, fire_ts, Decision.MISFIRE, next_fire, spec, lateness)
	if previous is not None and spec.overlap == OVERLAP_SKIP:
		return PlannedRun(
			name, score, fire_ts, Decision.OVERLAP, following, spec, lateness, previous=previous
		)
	collapsed = collapsed_fire_times(spec, fire_ts, now)
	return PlannedRun(name, score, fire_ts, Decision.ENQUEUE, following, spec, lateness, collapsed)


def plan_batch(
	due: list[tuple[str, int]],
	run_times: list[int],
	specs: list[ScheduleSpec | None],
	marked: list[bool],
	active_previous: dict[str, tuple[str, str]],
	now: float,
	grace: float,
) -> list[PlannedRun]:
	"""One PlannedRun per due entry, in order."""
	return [
		plan_run(name, score, fire_ts, spec, done, active_previous.get(name), now, grace)
		for (name, score), fire_ts, spec, done in zip(due, run_times, specs, marked)
	]
