"""The daemon's internal unique FIFO under concurrent producers and consumers."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from btu.scheduler_daemon.unique_queue import QueueClosed, UniqueQueue


def test_a_waiting_key_is_never_queued_twice_and_latest_value_wins():
	queue: UniqueQueue[str, int] = UniqueQueue()
	assert queue.put("a", 1) is True
	assert queue.put("a", 2) is False
	assert queue.put("b", 1) is True
	assert len(queue) == 2
	assert queue.get(0) == ("a", 2)
	assert queue.put("a", 3) is True  # popped keys may come back
	assert [queue.get(0), queue.get(0)] == [("b", 1), ("a", 3)]
	assert queue.get(0.01) is None


def test_priority_keys_overtake_a_refresh_in_progress():
	queue: UniqueQueue[str, str] = UniqueQueue()
	queue.put_many([(f"s{i}", "row") for i in range(1000)])
	queue.put("s500", "sync", priority=True)  # already waiting in bulk: moves ahead
	queue.put("new", "sync", priority=True)
	assert queue.get(0) == ("s500", "sync")
	assert queue.get(0) == ("new", "sync")
	assert queue.get(0) == ("s0", "row")
	assert "s500" not in queue and len(queue) == 998


def test_get_batch_takes_priority_first_and_respects_the_limit():
	queue: UniqueQueue[int, None] = UniqueQueue()
	queue.put_many([(i, None) for i in range(10)])
	queue.put(99, None, priority=True)
	batch = queue.get_batch(4, 0)
	assert [k for k, _ in batch] == [99, 0, 1, 2]
	assert len(queue) == 7


def test_close_wakes_waiting_consumers():
	queue: UniqueQueue[str, None] = UniqueQueue()
	errors = []

	def consume():
		try:
			queue.get(5)
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
			batch = queue.get_batch(50, 0.05)
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
	queue.get_batch(6, 0)
	assert queue.wait_below(5, timeout=0.05) is True


@pytest.mark.parametrize("lane", [False, True])
def test_fifo_order_within_a_lane(lane):
	queue: UniqueQueue[int, None] = UniqueQueue()
	for i in range(100):
		queue.put(i, None, priority=lane)
	assert [queue.get(0)[0] for _ in range(100)] == list(range(100))
