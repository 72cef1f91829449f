"""The enqueuing lease: at most one daemon per bench enqueues runs; the others stand by."""

from __future__ import annotations

import os
import socket
import uuid

from . import lua_scripts
from .redis_store import RedisStore

ACQUIRE_LUA = lua_scripts.load("lease_acquire")
RELEASE_LUA = lua_scripts.load("lease_release")


class Lease:
	def __init__(self, store: RedisStore, ttl_seconds: int) -> None:
		self.store = store
		self.ttl_ms = ttl_seconds * 1000
		self.holder_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
		self.key = store.keys.lease(store.config.bench_id)
		client = store.bench_client()
		self._acquire = client.register_script(ACQUIRE_LUA)
		self._release = client.register_script(RELEASE_LUA)
		self.held = False

	@property
	def renew_interval(self) -> float:
		return self.ttl_ms / 1000 / 3

	def acquire_or_renew(self) -> bool:
		"""True when this daemon holds the lease (newly or still). Raises on Redis errors."""
		self.held = bool(self._acquire(keys=[self.key], args=[self.holder_id, self.ttl_ms]))
		return self.held

	def holder(self) -> str | None:
		value = self.store.bench_client().get(self.key)
		return value.decode() if value else None

	def release(self) -> None:
		try:
			self._release(keys=[self.key], args=[self.holder_id])
		finally:
			self.held = False
