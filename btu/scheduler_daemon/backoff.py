"""Exponential back-off for reconnecting to Redis and MariaDB."""

from __future__ import annotations


class Backoff:
	def __init__(self, initial: float = 0.25, maximum: float = 10.0) -> None:
		self.initial = initial
		self.maximum = maximum
		self.current = 0.0
		self.failures = 0

	def fail(self) -> float:
		"""Record a failure; return how long to wait before the next try."""
		self.failures += 1
		self.current = self.initial if self.current == 0 else min(self.current * 2, self.maximum)
		return self.current

	def succeed(self) -> bool:
		"""Record a success; True when it ends a run of failures (a recovery)."""
		recovered = self.failures > 0
		self.current = 0.0
		self.failures = 0
		return recovered
