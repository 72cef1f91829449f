"""The fire times the leader remembers planning, per schedule: its own copy beside Redis.

When Redis loses its data (restarted without persistence, flushed), the resync from SQL would start
every schedule at its next fire time and the runs missed meanwhile would be lost. The leader keeps
(timing, next fire time) per schedule so that those runs are caught up instead. Only the lease holder
remembers: a standby's copy would go stale as the leader fires, and catching up from it would enqueue
runs again. The consumer, the scheduler and the prepared path all go through this one owner.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

Key = tuple[str, str]  # (site, schedule)


class LeaderMemory:
	def __init__(self) -> None:
		self._lock = threading.Lock()
		self._next: dict[Key, tuple[str, int]] = {}  # -> (timing, fire time)

	def __len__(self) -> int:
		return len(self._next)

	def clear(self) -> None:
		"""On every change of leadership: a new leader starts from what Redis holds."""
		with self._lock:
			self._next.clear()

	def load(self, site: str, fire_times: Iterable[tuple[str, str, int]]) -> None:
		"""(schedule, timing, fire time) as Redis holds them when this daemon takes the lease."""
		with self._lock:
			for name, timing, fire_ts in fire_times:
				self._next[(site, name)] = (timing, fire_ts)

	def synced(self, site: str, fire_times: Iterable[tuple[str, str, int]], leader: bool) -> None:
		"""A resync wrote these (schedule, timing, fire time); never moves a fire time backwards (the
		scheduler may have moved past it meanwhile) unless the timing changed."""
		with self._lock:
			for name, timing, fire_ts in fire_times:
				key = (site, name)
				if not leader:
					self._next.pop(key, None)
					continue
				known = self._next.get(key)
				if not known or known[0] != timing or known[1] < fire_ts:
					self._next[key] = (timing, fire_ts)

	def advanced(self, site: str, moves: Iterable[tuple[str, int | None]]) -> None:
		"""The scheduler moved these schedules on (None: it has no next fire time)."""
		with self._lock:
			for name, fire_ts in moves:
				key = (site, name)
				if fire_ts is None:
					self._next.pop(key, None)
				elif key in self._next:
					self._next[key] = (self._next[key][0], fire_ts)

	def forget(self, site: str, names: Iterable[str]) -> None:
		with self._lock:
			for name in names:
				self._next.pop((site, name), None)

	def fire_time(self, site: str, name: str, timing: str) -> int | None:
		"""The remembered fire time for this timing (None: none, or the rule changed since)."""
		with self._lock:
			known = self._next.get((site, name))
		return known[1] if known and known[0] == timing else None
