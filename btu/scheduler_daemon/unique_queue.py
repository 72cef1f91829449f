"""A thread-safe FIFO that holds each key at most once, with a priority lane.

Keys pushed with ``priority=True`` (socket requests) are served before the bulk lane
(full refreshes); pushing a key already waiting in the bulk lane moves it to the
priority lane, so an edit overtakes a refresh in progress. Each key carries a value
(the action); a later push replaces the waiting value.

``get_parts`` serves the priority lane from both ends: the newest keys first (an edit
pushed behind a backlog of 20,000 names is not served last), then a large share of the
oldest (the backlog drains, nothing starves). A key is held once, so no key's requests are
reordered by this: its last request is the one waiting. ``requeue`` puts back keys that
could not be applied (database or Redis away) without undoing a newer request for them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class QueueClosed(Exception):
	"""Raised by get_parts() once the queue is closed and empty."""


class UniqueQueue(Generic[K, V]):
	def __init__(self) -> None:
		self._priority: OrderedDict[K, V] = OrderedDict()
		self._bulk: OrderedDict[K, V] = OrderedDict()
		self._condition = threading.Condition()
		self._closed = False

	def put(self, key: K, value: V, priority: bool = False) -> bool:
		"""Queue ``key``; returns False when it was already waiting (its value is updated)."""
		with self._condition:
			if key in self._priority:
				self._priority[key] = value
				return False
			if key in self._bulk:
				if priority:
					del self._bulk[key]
					self._priority[key] = value
				else:
					self._bulk[key] = value
				return False
			(self._priority if priority else self._bulk)[key] = value
			self._condition.notify()
			return True

	def put_many(self, items: list[tuple[K, V]]) -> int:
		"""Queue many keys in the bulk lane under one lock; returns how many were new."""
		added = 0
		with self._condition:
			for key, value in items:
				if key in self._priority or key in self._bulk:
					continue
				self._bulk[key] = value
				added += 1
			if added:
				self._condition.notify_all()
		return added

	def get_parts(
		self, newest: int, oldest: int, bulk: int, timeout: float | None = None
	) -> list[list[tuple[K, V]]]:
		"""Pop work in the order to apply it, as up to three non-empty parts: the ``newest`` most
		recently pushed priority keys, then up to ``oldest`` of the oldest priority keys, then, when
		that emptied the priority lane, up to ``bulk`` of the oldest bulk keys. Each part keeps
		push order. Empty list on timeout; QueueClosed once closed and empty."""
		with self._condition:
			if not self._condition.wait_for(lambda: self._priority or self._bulk or self._closed, timeout):
				return []
			if not self._priority and not self._bulk:
				raise QueueClosed()
			parts: list[list[tuple[K, V]]] = []
			fresh = [self._priority.popitem(last=True) for _ in range(min(newest, len(self._priority)))]
			if fresh:
				fresh.reverse()
				parts.append(fresh)
			backlog = [self._priority.popitem(last=False) for _ in range(min(oldest, len(self._priority)))]
			if backlog:
				parts.append(backlog)
			if not self._priority:
				rows = [self._bulk.popitem(last=False) for _ in range(min(bulk, len(self._bulk)))]
				if rows:
					parts.append(rows)
			self._condition.notify_all()
			return parts

	def requeue(self, items: list[tuple[K, V]], priority: bool) -> int:
		"""Put back keys popped earlier (their push came before anything waiting now), at the head
		of their lane. A key waiting again meanwhile keeps its newer value, except that a put back
		priority key replaces (and overtakes) a bulk one as put() does. Returns how many were put back."""
		added = 0
		with self._condition:
			lane = self._priority if priority else self._bulk
			for key, value in reversed(items):
				if key in self._priority:
					continue
				if key in self._bulk:
					if not priority:
						continue
					del self._bulk[key]
				lane[key] = value
				lane.move_to_end(key, last=False)
				added += 1
			if added:
				self._condition.notify_all()
		return added

	def wait_below(self, limit: int, timeout: float | None = None) -> bool:
		"""Block while the bulk lane holds ``limit`` keys or more (back-pressure for refreshes)."""
		with self._condition:
			return self._condition.wait_for(lambda: len(self._bulk) < limit or self._closed, timeout)

	def close(self) -> None:
		with self._condition:
			self._closed = True
			self._condition.notify_all()

	def __len__(self) -> int:
		with self._condition:
			return len(self._priority) + len(self._bulk)

	def __contains__(self, key: object) -> bool:
		with self._condition:
			return key in self._priority or key in self._bulk

	def sizes(self) -> tuple[int, int]:
		with self._condition:
			return len(self._priority), len(self._bulk)
