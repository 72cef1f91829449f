"""The two pieces of state several daemon threads share, each with one owner: the leader's remembered
fire times (leader_memory.LeaderMemory) and the refresh requests (context.RefreshRequests)."""

from __future__ import annotations

import threading

from btu.scheduler_daemon.context import RefreshRequests
from btu.scheduler_daemon.leader_memory import LeaderMemory


def test_a_resync_never_moves_a_remembered_fire_time_backwards_unless_the_rule_changed():
	memory = LeaderMemory()
	memory.synced("a", [("TS-1", "cron:* * * * *", 120)], leader=True)
	memory.synced("a", [("TS-1", "cron:* * * * *", 60)], leader=True)  # the scheduler moved past it
	assert memory.fire_time("a", "TS-1", "cron:* * * * *") == 120
	memory.synced("a", [("TS-1", "cron:0 * * * *", 60)], leader=True)  # a new rule starts afresh
	assert memory.fire_time("a", "TS-1", "cron:0 * * * *") == 60
	assert memory.fire_time("a", "TS-1", "cron:* * * * *") is None  # another timing: not this memory


def test_a_standby_remembers_nothing_and_the_scheduler_moves_or_drops_what_it_fired():
	memory = LeaderMemory()
	memory.load("a", [("TS-1", "t1", 60), ("TS-2", "t2", 60)])
	memory.synced("a", [("TS-1", "t1", 180)], leader=False)
	assert memory.fire_time("a", "TS-1", "t1") is None
	memory.advanced("a", [("TS-2", 120), ("TS-3", 120)])  # TS-3 was never remembered: stays unknown
	assert memory.fire_time("a", "TS-2", "t2") == 120 and len(memory) == 1
	memory.advanced("a", [("TS-2", None)])
	assert len(memory) == 0
	memory.load("b", [("TS-1", "t1", 60)])
	memory.forget("a", ["TS-1"])
	assert memory.fire_time("b", "TS-1", "t1") == 60  # sites are apart
	memory.clear()
	assert len(memory) == 0


def test_no_refresh_request_is_lost_between_a_take_and_the_next_wait():
	requests = RefreshRequests()
	asked = [f"site{i}" for i in range(20000)]
	taken: set[str] = set()
	done = threading.Event()

	def refiller():
		while True:
			sites, _discover, _ticket = requests.take()
			taken.update(sites)
			if done.is_set() and not sites:
				return
			requests.wait(0.001)

	def asker(part):
		for site in part:
			requests.ask([site])

	threads = [threading.Thread(target=asker, args=(asked[i::4],)) for i in range(4)]
	reader = threading.Thread(target=refiller)
	reader.start()
	for t in threads:
		t.start()
	for t in threads:
		t.join()
	done.set()
	reader.join(10)
	assert not reader.is_alive()
	assert taken == set(asked)
	ticket = requests.ask(["x"], discover=True)
	assert requests.take() == ({"x"}, True, ticket) and requests.take() == (set(), False, 0)
