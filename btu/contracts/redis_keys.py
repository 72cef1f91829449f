"""The names of every Redis key BTU writes (the daemon writes them; Desk, the CLI and tests read them).

Per site, with the default prefix ``btu``:

==================================  ===============================================================
``btu:<site>:next_runs``            sorted set: member = schedule name, score = next fire time (Unix s)
``btu:<site>:specs``                hash: schedule name -> JSON ScheduleSpec (what to enqueue)
``btu:<site>:timings``              hash: schedule name -> ``"<cron>|<zone>"`` (a change resets the fire time)
``btu:<site>:errors``               hash: schedule name -> why it cannot run
``btu:<site>:fired:<ts>``           hash: schedule name -> job id: the exactly-once markers of the runs
                                    of one fire time (expires misfire_grace + 1 day after its last write)
``btu:<site>:prepared``             hash: schedule name -> ``"<job id> <builder> <spec sha1>"``: its run
                                    prepared ahead (an RQ job hash with status ``scheduled``, not queued)
``btu:<site>:enqueued``             hash: minute (Unix s // 60) -> runs enqueued in that minute
``btu:<site>:epoch``                random token; when it vanishes or changes, Redis lost BTU's keys
``btu:<site>:skipped``              hash: schedule name -> JSON list of its last skipped fire times,
                                    newest first (``fire_time``, ``reason`` overlap|misfire, details)
``btu:<site>:last_jobs``            hash: schedule name -> RQ job id of its latest run (schedules
                                    whose overlap policy is Skip: is it still queued or running?)
``btu:<site>:rule_edits``           counter: changes of an existing schedule's rule or zone (the fire
                                    transaction watches it: a run is never enqueued by a rule just replaced)
``btu:<site>:late_run:<schedule>``  ``"<started> <fire time>"`` (Unix s) of the schedule's latest late
                                    run, written by the worker that started it (expires after a day): a
                                    run of the schedule queued before that start is covered by it and
                                    skipped (one late run per backlog; ``btu.btu_core.late_runs``)
==================================  ===============================================================

Per bench: ``btu:<bench_id>:lease``, the enqueuing lease (one daemon enqueues at a time).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "btu"


@dataclass(frozen=True)
class RedisKeys:
	"""Key names under one prefix (``key_prefix`` in the daemon's configuration)."""

	prefix: str = DEFAULT_PREFIX

	def next_runs(self, site: str) -> str:
		return f"{self.prefix}:{site}:next_runs"

	def specs(self, site: str) -> str:
		return f"{self.prefix}:{site}:specs"

	def timings(self, site: str) -> str:
		return f"{self.prefix}:{site}:timings"

	def errors(self, site: str) -> str:
		return f"{self.prefix}:{site}:errors"

	def enqueued(self, site: str) -> str:
		return f"{self.prefix}:{site}:enqueued"

	def fired(self, site: str, fire_ts: int) -> str:
		"""The markers of one fire time: hash schedule -> job id (a field = that run was enqueued)."""
		return f"{self.prefix}:{site}:fired:{int(fire_ts)}"

	def fired_pattern(self, site: str) -> str:
		"""A SCAN pattern matching the marker hashes of every fire time of a site."""
		return f"{self.prefix}:{site}:fired:*"

	def prepared(self, site: str) -> str:
		return f"{self.prefix}:{site}:prepared"

	def skipped(self, site: str) -> str:
		return f"{self.prefix}:{site}:skipped"

	def last_jobs(self, site: str) -> str:
		return f"{self.prefix}:{site}:last_jobs"

	def rule_edits(self, site: str) -> str:
		return f"{self.prefix}:{site}:rule_edits"

	def late_run(self, site: str, schedule: str) -> str:
		"""The latest late run of a schedule that a worker started (written by workers, not the daemon)."""
		return f"{self.prefix}:{site}:late_run:{schedule}"

	def epoch(self, site: str) -> str:
		return f"{self.prefix}:{site}:epoch"

	def lease(self, bench_id: str) -> str:
		return f"{self.prefix}:{bench_id}:lease"


KEYS = RedisKeys()
