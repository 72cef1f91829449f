"""Jitter: a schedule's fire times moved later by a delay of up to J seconds, the same for every daemon.

Many schedules on the same minute (``0 * * * *`` on hundreds of sites) make every worker start at
once. A schedule with *Jitter* J runs each fire time t of its rule at ``t + d`` instead, with d in
``0 .. J`` taken from a hash of the schedule's identity (site and name) and t: the same on every
host, every restart and every daemon. d never reaches the rule's next fire time (it is at most
``next - t - 1``), so the jittered times are again a strictly increasing sequence of whole seconds.

That sequence *is* the schedule's fire times: the daemon plans, marks and enqueues the jittered
time exactly as it does any rule's, so exactly once holds unchanged; a Task Log's Fire Time is the
jittered moment (lateness is measured from it). ``rule_time`` gives back the rule's own time.

Frappe-free: the daemon, the Desk and the CLI share it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

MAX_JITTER_SECONDS = 3600

NextAfter = Callable[[int], "int | None"]  # the unjittered fire times: the first strictly after t


class JitterError(ValueError):
	"""A jitter value that cannot be used; the message says what was wrong."""


def normalize_jitter(value: object) -> int:
	"""Jitter in whole seconds, 0 .. MAX_JITTER_SECONDS (blank: 0); JitterError otherwise."""
	if value in (None, ""):
		return 0
	try:
		seconds = int(str(value).strip())
	except ValueError:
		raise JitterError(f"Jitter {str(value)[:40]!r} is not a whole number of seconds") from None
	if not 0 <= seconds <= MAX_JITTER_SECONDS:
		raise JitterError(f"Jitter must be from 0 to {MAX_JITTER_SECONDS} seconds, got {seconds}")
	return seconds


def identity(site: str, schedule: str) -> str:
	"""What the delay is derived from besides the fire time: the same schedule name on two sites
	gets different delays (spreading a bench's sites), and the same on every daemon."""
	return f"{site}/{schedule}"


def delay(key: str, rule_ts: int, jitter: int, rule_next: NextAfter) -> int:
	"""The delay of rule fire time ``rule_ts``: 0 .. min(jitter, the gap to the next one - 1)."""
	if jitter <= 0:
		return 0
	following = rule_next(rule_ts)
	limit = jitter if following is None else min(jitter, following - rule_ts - 1)
	if limit <= 0:
		return 0
	digest = hashlib.sha256(f"{key}|{int(rule_ts)}".encode()).digest()
	return int.from_bytes(digest[:8], "big") % (limit + 1)


def next_after(key: str, jitter: int, rule_next: NextAfter, after: int) -> int | None:
	"""The first jittered fire time strictly after ``after``.

	Only the rule's latest fire time at or before ``after`` (and within ``jitter`` of it) can still
	be ahead once jittered: an earlier one's jittered time is before that one. Otherwise it is the
	rule's next fire time, jittered."""
	if jitter <= 0:
		return rule_next(after)
	latest = _latest_at_or_before(rule_next, after - jitter, after)
	if latest is not None:
		moved = latest + delay(key, latest, jitter, rule_next)
		if moved > after:
			return moved
	found = rule_next(after)
	return None if found is None else found + delay(key, found, jitter, rule_next)


def rule_time(key: str, jitter: int, rule_next: NextAfter, fire_ts: int) -> int | None:
	"""The rule's fire time whose jittered time is ``fire_ts`` (None: ``fire_ts`` is not one)."""
	latest = _latest_at_or_before(rule_next, fire_ts - max(jitter, 0), fire_ts)
	if latest is not None and latest + delay(key, latest, jitter, rule_next) == fire_ts:
		return latest
	return None


def _latest_at_or_before(rule_next: NextAfter, low: int, high: int) -> int | None:
	"""The rule's latest fire time t with low <= t <= high (None: none), by bisection on "the next
	fire time after x is at most high" (a rule firing every second costs log2(high - low) steps)."""
	lo, hi = low - 1, high
	first = rule_next(lo)
	if first is None or first > high:
		return None
	following = rule_next(first)
	if following is None or following > high:
		return first  # the usual case: one fire time in the window
	lo = first
	while hi - lo > 1:
		mid = (lo + hi) // 2
		found = rule_next(mid)
		if found is not None and found <= high:
			lo = mid
		else:
			hi = mid
	return rule_next(lo)
