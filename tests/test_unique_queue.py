"""The daemon's internal unique FIFO under concurrent producers and consumers."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from btu.scheduler_daemon.unique_queue import QueueClosed, UniqueQueue


def one(queue: UniqueQueue, timeout: float = 0) -> tuple | None:
	"""The next key as the consumer would take it alone (oldest priority key, else oldest bulk)."""
	parts = queue.get_parts(0, 1, 0, timeout) if queue.sizes()[0] else queue.get_parts(0, 0, 1, timeout)
	return parts[0][0] if parts else None


def test_a_waiting_key_is_never_queued_twice_and_latest_value_wins():
	queue: UniqueQueue[str, int] = UniqueQueue()
	assert queue.put("a", 1) is True
	assert queue.put("a", 2) is False
	assert queue.put("b", 1) is True
	assert len(queue) == 2
	assert one(queue) == ("a", 2)
	assert queue.put("a", 3) is True  # popped keys may come back
	assert [one(queue), one(queue)] == [("b", 1), ("a", 3)]
	assert one(queue, 0.01) is None


def test_priority_keys_overtake_a_refresh_in_progress():
	queue: UniqueQueue[str, str] = UniqueQueue()
	queue.put_many([(f"s{i}", "row") for i in range(1000)])
	queue.put("s500", "sync", priority=True)  # already waiting in bulk: moves ahead
	queue.put("new", "sync", priority=True)
	assert queue.get_parts(0, 1, 1, 0) == [[("s500", "sync")]]  # bulk waits while priority keys remain
	assert queue.get_parts(0, 1, 1, 0) == [[("new", "sync")], [("s0", "row")]]
	assert "s500" not in queue and len(queue) == 998


def test_parts_take_the_newest_priority_keys_then_the_oldest_then_bulk_within_their_limits():
	queue: UniqueQueue[int, None] = UniqueQueue()
	queue.put_many([(i, None) for i in range(10)])
	for key in (90, 91, 92, 93, 94):
		queue.put(key, None, priority=True)
	parts = queue.get_parts(2, 2, 4, 0)
	assert [[k for k, _ in part] for part in parts] == [[93, 94], [90, 91]]  # 92 left: no bulk yet
	parts = queue.get_parts(2, 2, 4, 0)
	assert [[k for k, _ in part] for part in parts] == [[92], [0, 1, 2, 3]]
	assert len(queue) == 6


def test_close_wakes_waiting_consumers():
	queue: UniqueQueue[str, None] = UniqueQueue()
	errors = []

	def consume():
		try:
			queue.get_parts(1, 1, 1, 5)
		except QueueClosed:
			errors.append("closed")

	thread = threading.Thread(target=consume)
	thread.start()
	queue.close()
	thread.join(2)
	assert errors == ["closed"] and not thread.is_alive()


def test_concurrent_producers_and_consumers_lose_nothing_and_never_hold_duplicates():
	queue: UniqueQueue[str, int] = UniqueQueue()
	keys = [f"TS-{i:06d}" for i in range(2000)]
	consumed: Counter[str] = Counter()
	lock = threading.Lock()
	done = threading.Event()
	max_len = [0]

	def producer(seed: int) -> None:
		for round_ in range(3):
			for index, key in enumerate(keys):
				if (index + seed) % 4 == 0:
					queue.put(key, round_, priority=True)
				else:
					queue.put(key, round_)
				max_len[0] = max(max_len[0], len(queue))

	def consumer() -> None:
		while not done.is_set() or len(queue):
			batch = [item for part in queue.get_parts(25, 25, 50, 0.05) for item in part]
			with lock:
				consumed.update(k for k, _ in batch)

	producers = [threading.Thread(target=producer, args=(s,)) for s in range(4)]
	consumers = [threading.Thread(target=consumer) for _ in range(3)]
	for thread in producers + consumers:
		thread.start()
	for thread in producers:
		thread.join(30)
	done.set()
	for thread in consumers:
		thread.join(30)
	assert set(consumed) == set(keys)  # every key pushed was consumed at least once
	assert max_len[0] <= len(keys)  # never more entries than distinct keys
	assert len(queue) == 0
	# 12 pushes per key; deduplication must have absorbed a good share of them
	assert sum(consumed.values()) < 12 * len(keys)


def test_wait_below_applies_back_pressure():
	queue: UniqueQueue[int, None] = UniqueQueue()
	queue.put_many([(i, None) for i in range(10)])
	assert queue.wait_below(5, timeout=0.05) is False
	queue.get_parts(0, 0, 6, 0)
	assert queue.wait_below(5, timeout=0.05) is True


@pytest.mark.parametrize("lane", [False, True])
def test_fifo_order_within_a_lane(lane):
	queue: UniqueQueue[int, None] = UniqueQueue()
	for i in range(100):
		queue.put(i, None, priority=lane)
	assert [one(queue)[0] for _ in range(100)] == list(range(100))


def test_get_parts_serves_the_newest_requests_first_then_the_oldest_then_rows():
	queue: UniqueQueue[str, str] = UniqueQueue()
	queue.put_many([(f"row{i}", "row") for i in range(5)])
	for i in range(10):
		queue.put(f"p{i}", "sync", priority=True)
	parts = queue.get_parts(newest=3, oldest=4, bulk=2, timeout=0)
	# The priority lane is not emptied: no rows yet.
	assert [[k for k, _ in part] for part in parts] == [["p7", "p8", "p9"], ["p0", "p1", "p2", "p3"]]
	parts = queue.get_parts(newest=3, oldest=4, bulk=2, timeout=0)
	assert [[k for k, _ in part] for part in parts] == [["p4", "p5", "p6"], ["row0", "row1"]]
	assert queue.get_parts(3, 4, 10, timeout=0) == [[(f"row{i}", "row") for i in range(2, 5)]]
	assert queue.get_parts(3, 4, 10, timeout=0.01) == []
	queue.close()
	with pytest.raises(QueueClosed):
		queue.get_parts(3, 4, 10, timeout=0)


def test_an_edit_pushed_behind_a_backlog_is_in_the_first_part():
	queue: UniqueQueue[str, str] = UniqueQueue()
	for i in range(20_000):
		queue.put(f"TS-{i:05d}", "sync", priority=True)
	queue.put("TS-EDITED", "sync", priority=True)
	first = queue.get_parts(newest=50, oldest=2000, bulk=200, timeout=0)[0]
	assert ("TS-EDITED", "sync") in first and len(first) == 50


def test_requeue_puts_keys_back_at_the_head_and_never_undoes_a_newer_request():
	queue: UniqueQueue[str, str] = UniqueQueue()
	queue.put("b", "sync", priority=True)
	queue.put("a", "cancel", priority=True)  # newer than the "a" being put back below
	queue.put_many([("r1", "row"), ("c", "row")])
	added = queue.requeue([("x", "sync"), ("a", "sync"), ("c", "sync")], priority=True)
	assert added == 2
	assert [one(queue) for _ in range(4)] == [("x", "sync"), ("c", "sync"), ("b", "sync"), ("a", "cancel")]
	queue.put("r2", "sync", priority=True)
	assert queue.requeue([("r0", "row"), ("r2", "row")], priority=False) == 1
	assert [one(queue) for _ in range(3)] == [("r2", "sync"), ("r0", "row"), ("r1", "row")]


def test_newest_first_serving_never_reorders_one_keys_requests():
	"""Producers push numbered requests for a few keys; a consumer using get_parts (and putting some
	back, as after a database error) sees each key's numbers rising and ends with each key's last one."""
	queue: UniqueQueue[str, int] = UniqueQueue()
	keys = [f"TS-{i:03d}" for i in range(50)]
	last: dict[str, int] = {}
	seen: dict[str, list[int]] = {k: [] for k in keys}
	lock = threading.Lock()
	done = threading.Event()

	def producer(offset: int) -> None:
		for n in range(4000):
			key = keys[(n * 7 + offset) % len(keys)]
			with lock:  # number and push under one lock: the push order is the number order
				value = last[key] = last.get(key, 0) + 1
				queue.put(key, value, priority=True)

	def consumer() -> None:
		flip = 0
		while not done.is_set() or len(queue):
			for part in queue.get_parts(newest=5, oldest=40, bulk=10, timeout=0.01):
				flip += 1
				if flip % 7 == 0:  # "the database is away": the whole part goes back
					queue.requeue(part, priority=True)
					continue
				for key, value in part:
					seen[key].append(value)

	producers = [threading.Thread(target=producer, args=(s,)) for s in range(3)]
	reader = threading.Thread(target=consumer)
	reader.start()
	for thread in producers:
		thread.start()
	for thread in producers:
		thread.join(30)
	done.set()
	reader.join(30)
	assert not reader.is_alive() and len(queue) == 0
	for key in keys:
		assert seen[key] == sorted(set(seen[key])), key  # strictly rising: never an older request after
		assert seen[key][-1] == last[key], key  # the last request for a key is applied
