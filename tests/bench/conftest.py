"""Fixtures of the real-bench suite. Without BTU_BENCH and BTU_SITE every test here is skipped
with one reason that says what to set; CI has no bench."""

from __future__ import annotations

import os
import shlex
import signal
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from btu.contracts import protocol

from .harness import Api, Bench, BenchConfig, SiteSnapshot, delete_new_records, stop_session, wait_for

CONFIG = BenchConfig.from_environment()
SKIP_REASON = (
	"real-bench suite: set BTU_BENCH=/path/to/frappe-bench and BTU_SITE=<site with btu installed> "
	"(optional: BTU_SITE2, BTU_BENCH_USER, BTU_ADMIN_PASSWORD, BTU_BASE_URL); see tests/bench/README.md"
)
DAEMON_PROCESS = "btu_scheduler"


def pytest_collection_modifyitems(config, items):
	here = Path(__file__).parent
	missing = None
	if CONFIG is None:
		missing = SKIP_REASON
	else:
		try:
			import playwright  # noqa: F401
		except ImportError:
			missing = "real-bench suite: Playwright for Python is missing: pip install -e '.[test,e2e]'"
	if missing:
		marker = pytest.mark.skip(reason=missing)
		for item in items:
			if here in Path(item.fspath).parents:
				item.add_marker(marker)


def _under_honcho(pid: int) -> bool:
	"""Whether a process descends from honcho (`bench start`): stopping it would stop the bench."""
	while pid > 1:
		try:
			cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
			stat = Path(f"/proc/{pid}/stat").read_text()
		except OSError:
			return False
		if b"honcho" in cmdline:
			return True
		pid = int(stat.rsplit(")", 1)[1].split()[1])
	return False


@dataclass
class DaemonUnderTest:
	"""The BTU daemon, run with the command of the Procfile line `setup-procfile` writes, in the
	bench folder as the bench user: its events go to logs/btu_scheduler.log as under `bench start`.

	A daemon that already answers on the bench's socket is used. The suite may stop and start it
	again (as the Procfile line) unless it runs under honcho (`bench start` stops the whole bench when
	one of its processes exits); one it found running is left running at the end, one it started is
	stopped."""

	bench: Bench
	command: str
	log_dir: str
	process: object = None
	found_running: bool = False
	under_honcho: bool = False
	events_path: Path = field(init=False)

	def __post_init__(self) -> None:
		self.events_path = Path(self.bench.path, "logs", "btu_scheduler.log")
		reply = self.ping(0.5)
		if reply.ok:
			self.found_running = True
			self.under_honcho = _under_honcho(int(reply.data["pid"]))

	@property
	def restartable(self) -> bool:
		return not self.under_honcho

	def ping(self, timeout: float = 2.0):
		return protocol.ping(self.bench.socket_path, timeout)

	def start(self) -> None:
		if self.ping(0.5).ok:
			return
		self.process = self.bench.popen(self.command, os.path.join(self.log_dir, "daemon-launch.log"))
		wait_for(
			lambda: self.ping(0.5).ok or self.process.poll() is not None, 90, what="the daemon to answer"
		)
		assert self.process.poll() is None, Path(
			self.bench.path, "logs", "btu_scheduler.error.log"
		).read_text()[-3000:]

	def stop(self) -> None:
		assert self.restartable, "the daemon runs under honcho: stopping it stops the bench"
		if self.process is not None:
			stop_session(self.process)
			self.process = None
		else:
			reply = self.ping(1.0)
			if reply.ok:
				os.kill(int(reply.data["pid"]), signal.SIGTERM)
		wait_for(lambda: not self.ping(0.5).reachable, 20, what="the daemon to stop")

	def finish(self) -> None:
		"""At the end of the session: leave the bench as found (running, or not)."""
		if self.found_running:
			self.start()
		elif self.process is not None:
			self.stop()

	def mark(self) -> int:
		return self.events_path.stat().st_size if self.events_path.exists() else 0

	def events(self, since: int = 0) -> str:
		with open(self.events_path, "rb") as handle:
			handle.seek(since)
			return handle.read().decode("utf-8", "replace")


@dataclass
class BenchProcesses:
	bench: Bench
	daemon: DaemonUnderTest
	honcho: object = None
	found_running: bool = False


def _web_up(base_url: str) -> bool:
	try:
		with urllib.request.urlopen(base_url + "/api/method/ping", timeout=3) as response:
			return response.status == 200
	except OSError:
		return False


@pytest.fixture(scope="session")
def bench_config() -> BenchConfig:
	if CONFIG is None:
		pytest.skip(SKIP_REASON)
	return CONFIG


@pytest.fixture(scope="session")
def bench(bench_config) -> Bench:
	return Bench(bench_config)


@pytest.fixture(scope="session")
def suite_dir():
	path = tempfile.mkdtemp(prefix="btu-bench-suite-", dir="/tmp")
	os.chmod(path, 0o755)
	yield path


@pytest.fixture(scope="session")
def one_session_per_bench(bench_config):
	"""Real-bench sessions on one bench take turns: each deletes every BTU record made on the site
	since it began (``site_left_as_found``) and may restart the daemon, so a second session running
	meanwhile would lose its records. A lock file next to the bench's own (held for the session)."""
	import fcntl

	path = os.path.join(
		tempfile.gettempdir(), f"btu-bench-suite-{bench_config.path.strip('/').replace('/', '-')}.lock"
	)
	handle = open(path, "a+")
	try:
		fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
	except BlockingIOError:
		print(f"\nwaiting for another real-bench session on {bench_config.path} ({path})", flush=True)
		fcntl.flock(handle, fcntl.LOCK_EX)
	yield
	fcntl.flock(handle, fcntl.LOCK_UN)
	handle.close()


@pytest.fixture(scope="session")
def bench_processes(bench, bench_config, suite_dir, one_session_per_bench):
	"""The bench's processes as `bench start` runs them, and the daemon as the Procfile line says."""
	setup = bench.bench("btu-scheduler", "setup-procfile")
	assert "Procfile" in setup.stdout, setup.stdout
	procfile = bench.procfile()
	assert DAEMON_PROCESS in procfile, procfile
	daemon = DaemonUnderTest(bench, procfile[DAEMON_PROCESS], suite_dir)
	processes = BenchProcesses(bench, daemon)
	if _web_up(bench_config.base_url):
		processes.found_running = True
	else:
		names = [n for n in procfile if n != DAEMON_PROCESS]  # `watch` too: Desk's live reload talks to it
		suite_procfile = Path(suite_dir, "Procfile")
		suite_procfile.write_text("".join(f"{n}: {procfile[n]}\n" for n in names))
		os.chmod(suite_procfile, 0o644)
		processes.honcho = bench.popen(
			# What `bench start` does: DEV_SERVER=true (Desk then reaches socket.io on its own port), honcho.
			f"env DEV_SERVER=true PYTHONUNBUFFERED=true honcho start -f {suite_procfile} -d {bench.path}",
			os.path.join(suite_dir, "honcho.log"),
		)
		wait_for(lambda: _web_up(bench_config.base_url), 120, 1.0, what=f"Desk at {bench_config.base_url}")
	daemon.start()
	yield processes
	daemon.finish()
	if processes.honcho is not None:
		stop_session(processes.honcho)


@pytest.fixture(scope="session")
def api(bench_processes, bench_config) -> Api:
	return Api(bench_config.base_url, bench_config.admin_password)


def _free_port() -> int:
	import socket

	with socket.socket() as probe:
		probe.bind(("127.0.0.1", 0))
		return probe.getsockname()[1]


@pytest.fixture(scope="session")
def site2_api(bench, bench_config, bench_processes, suite_dir):
	"""The REST API of BTU_SITE2 for real, or None without BTU_SITE2.

	The bench's web server is asked with ``X-Frappe-Site-Name`` first; when it answers as another
	site (it was started while the bench had a default site, `bench use`, and serves that site for
	every name), a web server of the bench's own for site2 is started (``bench --site <site2> serve``
	on a free port, as the bench user) for the session and stopped at its end. Either way the site
	that answers is checked: the site2 checks never quietly talk to site1."""
	site2 = bench_config.site2
	if not site2:
		yield None
		return
	api = Api(bench_config.base_url, bench_config.admin_password, site=site2)
	if api.served_site() == site2:
		yield api
		return
	port = _free_port()
	server = bench.popen(
		f"bench --site {shlex.quote(site2)} serve --port {port} --noreload",
		os.path.join(suite_dir, "site2-web.log"),
	)
	try:
		base_url = f"http://127.0.0.1:{port}"
		wait_for(lambda: _web_up(base_url), 120, 1.0, what=f"{site2}'s own web server at {base_url}")
		api = Api(base_url, bench_config.admin_password, site=site2)
		served = api.served_site()
		assert served == site2, f"the web server started for {site2} answers as {served}"
		print(
			f"\n{site2}: the bench's web server serves {bench_config.site} for every name; "
			f"using `bench --site {site2} serve --port {port}`",
			flush=True,
		)
		yield api
	finally:
		stop_session(server)


@pytest.fixture(scope="session")
def site_left_as_found(api):
	"""Every BTU record the suite makes is deleted at the end; the site holds what it held."""
	snapshot = SiteSnapshot.take(api)
	yield snapshot
	delete_new_records(api, snapshot)
	left = snapshot.new_since(api)
	assert not any(left.values()), f"records left in the site: {left}"


@pytest.fixture(scope="session")
def browser(bench_config):
	from playwright.sync_api import sync_playwright

	from .desk import CHROMIUM_ARGS

	with sync_playwright() as playwright:
		browser = playwright.chromium.launch(
			executable_path=bench_config.chromium, headless=True, args=CHROMIUM_ARGS
		)
		yield browser
		browser.close()


@pytest.fixture(scope="session")
def desk(browser, bench_config, bench_processes, site_left_as_found):
	"""One logged-in Desk tab for the whole suite (as one administrator working through it)."""
	from .desk import Desk

	context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
	page = context.new_page()
	page.set_default_timeout(30_000)
	desk = Desk(page, bench_config.base_url, Path(bench_config.screenshots))
	desk.attach()
	desk.login(bench_config.admin_password)
	yield desk
	context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
	report = yield
	setattr(item, f"rep_{report.when}", report)
	return report


@pytest.fixture
def no_console_errors(desk, request):
	"""Fail a test on any browser console error it caused that was not an expected validation
	(and keep a screenshot of the page when the test failed)."""
	desk.take_errors()
	yield desk
	if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
		desk.shot(f"FAILED-{request.node.name}")
	errors = desk.take_errors()
	assert not errors, "browser console errors:\n" + "\n".join(f"{e.page}: {e.text}" for e in errors)


def pytest_terminal_summary(terminalreporter):
	if CONFIG is None:
		return
	shots = sorted(Path(CONFIG.screenshots).glob("*.png")) if Path(CONFIG.screenshots).is_dir() else []
	if shots:
		terminalreporter.write_sep("-", f"BTU real-bench screenshots: {CONFIG.screenshots}")
		for shot in shots:
			terminalreporter.write_line(f"  {shot.name}")
