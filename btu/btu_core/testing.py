"""Support for BTU's FrappeTestCase tests (``bench --site <site> run-tests --app btu``).

Two things every BTU test needs on a real site:

* **No trace.** The task runner and the daemon notifications commit, so rolling back is not
  enough: ``BTUTestCase`` remembers which BTU records existed when the test class began and,
  after each test, deletes every BTU Task, Task Schedule and Task Log made since (and the Email
  Queue entries and Error Logs about them), then commits. A site holds exactly what it held.
* **A real daemon.** ``TestDaemon`` runs the scheduler daemon as a process of its own
  (``python -m btu.scheduler_daemon run --bench <bench> --site <site>``) on its own socket,
  with its own Redis key prefix, bench id (so it never takes the live daemon's lease) and queue
  prefix (so no worker runs what it enqueues). Tests point Desk's notifications at it with
  ``frappe.flags.btu_socket_path`` (and the Desk's reads of Redis with ``frappe.flags.btu_key_prefix``)
  and read what it wrote to Redis.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from typing import Any, Callable

import frappe
from frappe.tests.utils import FrappeTestCase

from btu.contracts import protocol
from btu.contracts.redis_keys import RedisKeys

TRACKED = (
	"BTU Alert",
	"BTU Task Log",
	"BTU Task Schedule",
	"BTU Task",
	"BTU Holiday List",
)  # deletion order: alerts and logs link to the others, schedules to holiday lists


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
	deadline = time.monotonic() + timeout
	while time.monotonic() < deadline:
		value = predicate()
		if value:
			return value
		time.sleep(0.05)
	raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def existing_names() -> dict[str, set[str]]:
	return {doctype: set(frappe.get_all(doctype, pluck="name")) for doctype in TRACKED}


def delete_new_records(before: dict[str, set[str]], since: str) -> dict[str, list[str]]:
	"""Delete the BTU records not in ``before`` (and the emails and error logs about them); commit."""
	frappe.db.rollback()
	deleted: dict[str, list[str]] = {}
	new = {
		doctype: sorted(set(frappe.get_all(doctype, pluck="name")) - before[doctype]) for doctype in TRACKED
	}
	references = [name for doctype in TRACKED for name in new[doctype]]
	if references:
		deleted["Email Queue"] = frappe.get_all(
			"Email Queue", filters={"reference_name": ("in", references)}, pluck="name"
		)
	new_tasks = new["BTU Task"]
	if new_tasks:
		# Runs of tasks made by a test whose log went missing, or that failed before logging.
		deleted["Error Log"] = [
			row.name
			for row in frappe.get_all(
				"Error Log", filters={"creation": (">=", since)}, fields=["name", "method", "error"]
			)
			if any(task in f"{row.method} {row.error}" for task in new_tasks)
		]
	for doctype in ("Email Queue", "Error Log"):
		for name in deleted.get(doctype, []):
			frappe.delete_doc(doctype, name, force=True, ignore_permissions=True)
	frappe.flags.btu_testing_cleanup = True  # deleting schedules must not talk to any daemon
	try:
		for doctype in TRACKED:
			for name in new[doctype]:
				if doctype == "BTU Task" and frappe.db.get_value(doctype, name, "docstatus") == 1:
					frappe.db.set_value(doctype, name, "docstatus", 2, update_modified=False)
				frappe.delete_doc(doctype, name, force=True, ignore_permissions=True, ignore_missing=True)
			deleted[doctype] = new[doctype]
		frappe.db.commit()
	finally:
		frappe.flags.btu_testing_cleanup = False
	return deleted


@contextmanager
def outgoing_email_account():
	"""A default outgoing Email Account while the block runs (Frappe queues no email without one);
	the site's own is used when it has one. Nothing is sent: Frappe sends no mail under run-tests."""
	if frappe.db.exists("Email Account", {"default_outgoing": 1, "enable_outgoing": 1}):
		yield None
		return
	account = frappe.get_doc(
		{
			"doctype": "Email Account",
			"email_account_name": f"BTU Test Outgoing {uuid.uuid4().hex[:6]}",
			"email_id": "btu-test-outgoing@example.com",
			"enable_outgoing": 1,
			"default_outgoing": 1,
			"smtp_server": "127.0.0.1",
			"no_smtp_authentication": 1,
		}
	).insert(ignore_permissions=True)
	frappe.db.commit()
	try:
		yield account
	finally:
		frappe.db.rollback()
		frappe.delete_doc("Email Account", account.name, force=True, ignore_permissions=True)
		frappe.db.commit()


class BTUTestCase(FrappeTestCase):
	"""A FrappeTestCase that leaves the site exactly as it found it, though runs and saves commit."""

	@classmethod
	def setUpClass(cls) -> None:
		super().setUpClass()
		cls._btu_before = existing_names()

	def setUp(self) -> None:
		self._btu_since = frappe.utils.now()
		frappe.flags.btu_daemon_pending = None
		frappe.flags.btu_daemon_unreachable_warned = False

	def tearDown(self) -> None:
		delete_new_records(self._btu_before, self._btu_since)
		frappe.flags.btu_daemon_pending = None


class TestDaemon:
	"""The real scheduler daemon in a process of its own, isolated from the site's live daemon."""

	def __init__(self) -> None:
		token = uuid.uuid4().hex[:10]
		self.folder = tempfile.mkdtemp(prefix="btu-t-", dir="/tmp")
		self.socket_path = os.path.join(self.folder, "btu.sock")
		self.keys = RedisKeys(f"btutest{token}")
		self.bench_id = f"btutest-{token}"
		self.log_path = os.path.join(self.folder, "daemon.log")
		self.process: subprocess.Popen | None = None

	def start(self) -> "TestDaemon":
		from frappe.utils import get_bench_path

		env = {
			**os.environ,
			"PYTHONUNBUFFERED": "1",
			"BTU_KEY_PREFIX": self.keys.prefix,
			"BTU_BENCH_ID": self.bench_id,
			"BTU_QUEUE_PREFIX": f"{self.bench_id}:",
			"BTU_FULL_REFRESH_INTERVAL": "3600",
			"BTU_METRICS_PORT": "",
			"BTU_LOG_LEVEL": "DEBUG",
		}
		command = [
			sys.executable, "-m", "btu.scheduler_daemon", "run", "--bench", get_bench_path(),
			"--site", frappe.local.site, "--socket", self.socket_path, "--log-to", "stdout",
		]  # fmt: skip
		with open(self.log_path, "ab") as log:
			self.process = subprocess.Popen(
				command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
			)
		wait_for(
			lambda: protocol.ping(self.socket_path, 0.5).ok or self.process.poll() is not None,
			30,
			"the test daemon to answer",
		)
		if self.process.poll() is not None:
			raise AssertionError(f"the test daemon exited: {self.output()}")
		return self

	def output(self, since: int = 0) -> str:
		"""The daemon's log (from offset ``since``, a value of ``mark()``)."""
		try:
			with open(self.log_path, encoding="utf-8", errors="replace") as handle:
				return handle.read()[since:]
		except FileNotFoundError:
			return ""

	def mark(self) -> int:
		"""Where the log ends now: names are reused across tests, so look only at what follows."""
		return len(self.output())

	def redis(self):
		from frappe.utils.background_jobs import get_redis_conn

		return get_redis_conn()

	def next_run(self, schedule: str) -> float | None:
		return self.redis().zscore(self.keys.next_runs(frappe.local.site), schedule)

	def planned_or_enqueued(self, schedule: str) -> bool:
		"""A run due now may already have left next_runs for the queue by the time one looks."""
		return self.next_run(schedule) is not None or any(
			job.meta.get("btu_schedule") == schedule for job in self.queued_jobs()
		)

	def queued_jobs(self, queue: str = "default") -> list:
		"""The RQ jobs it enqueued and no worker ran (its queues are its own)."""
		from rq.job import Job

		conn = self.redis()
		ids = [i.decode() for i in conn.lrange(f"rq:queue:{self.bench_id}:{queue}", 0, -1)]
		return [job for job in Job.fetch_many(ids, connection=conn) if job is not None]

	def error(self, schedule: str) -> str | None:
		value = self.redis().hget(self.keys.errors(frappe.local.site), schedule)
		return value.decode() if value else None

	def status(self) -> dict[str, Any]:
		reply = protocol.status(self.socket_path, timeout=5.0)
		if not reply.ok:
			raise AssertionError(f"the test daemon did not answer status: {reply.message}")
		return reply.data

	def stop(self) -> None:
		if self.process is not None and self.process.poll() is None:
			os.kill(self.process.pid, signal.SIGTERM)
			try:
				self.process.wait(10)
			except subprocess.TimeoutExpired:
				os.kill(self.process.pid, signal.SIGKILL)
				self.process.wait(5)
		self.process = None
		conn = self.redis()
		for queue in conn.scan_iter(match=f"rq:queue:{self.bench_id}:*", count=1000):
			for job_id in conn.lrange(queue, 0, -1):  # the jobs it enqueued (their ids name no bench)
				conn.delete(b"rq:job:" + job_id)
		for pattern in (f"{self.keys.prefix}:*", f"rq:*{self.bench_id}*"):
			for key in conn.scan_iter(match=pattern, count=1000):
				conn.delete(key)
		for name in os.listdir(self.folder):
			os.unlink(os.path.join(self.folder, name))
		os.rmdir(self.folder)


BURST_WORKER = (
	"import sys, redis\n"
	"from rq import Queue, Worker\n"
	"conn = redis.Redis.from_url(sys.argv[1])\n"
	"Worker([Queue(sys.argv[2], connection=conn)], connection=conn).work(burst=True)\n"
)


def run_burst_worker(queue_name: str, timeout: float = 180) -> subprocess.CompletedProcess:
	"""A real rq worker of the test's own (burst: it stops when the queue is empty), started in the
	sites folder as bench workers run, on the bench's RQ Redis; then a fresh database snapshot."""
	result = subprocess.run(
		[sys.executable, "-c", BURST_WORKER, frappe.conf.redis_queue, queue_name],
		cwd=os.path.abspath(frappe.local.sites_path),
		capture_output=True,
		text=True,
		timeout=timeout,
	)
	frappe.db.rollback()  # see what the worker wrote
	return result


def delete_burst_workers(conn: Any, queue_name: str) -> None:
	"""The records burst workers of ``queue_name`` left in RQ's worker registry."""
	for key in conn.scan_iter(match="rq:worker:*", count=1000):
		if (conn.hget(key, "queues") or b"").decode() == queue_name:
			conn.delete(key)


class DaemonTestCase(BTUTestCase):
	"""A BTUTestCase with a real test daemon that Desk's notifications go to."""

	daemon: TestDaemon

	@classmethod
	def setUpClass(cls) -> None:
		super().setUpClass()
		cls.daemon = TestDaemon().start()
		cls.addClassCleanup(cls.daemon.stop)

	def setUp(self) -> None:
		super().setUp()
		frappe.flags.btu_socket_path = self.daemon.socket_path
		frappe.flags.btu_key_prefix = self.daemon.keys.prefix  # btu_api.status and btu.api read its keys

	def tearDown(self) -> None:
		super().tearDown()
		frappe.flags.btu_socket_path = None
		frappe.flags.btu_key_prefix = None
