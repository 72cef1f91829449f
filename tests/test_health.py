"""Health for orchestrators on real daemons: /healthz, /readyz beside /metrics on metrics_host, and
``btu-scheduler status --check live|ready|leader`` exit codes (btu/scheduler_daemon/health.py)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys

import psutil
import pytest

from btu.scheduler_daemon.config import ConfigError, load_config
from btu.scheduler_daemon.health import ACTIVITIES
from btu.scheduler_daemon.schema import init_database

from .conftest import SITE
from .services import REPO, DaemonProcess, RedisServer, free_port, metrics_daemon, wait_for, write_toml
from .test_config import make_bench


def get(port: int, path: str, host: str = "127.0.0.1", method: str = "GET") -> tuple[int, str, bytes]:
	"""(status, content type, body) of one request to the daemon's HTTP endpoint."""
	conn = http.client.HTTPConnection(host, port, timeout=10)
	try:
		conn.request(method, path)
		response = conn.getresponse()
		return response.status, response.getheader("Content-Type") or "", response.read()
	finally:
		conn.close()


def get_json(port: int, path: str, host: str = "127.0.0.1") -> tuple[int, dict]:
	status, content_type, body = get(port, path, host)
	assert content_type == "application/json", (path, content_type, body[:200])
	return status, json.loads(body)


def cli_check(socket_path: str, check: str, *extra: str) -> subprocess.CompletedProcess:
	return subprocess.run(
		[
			sys.executable,
			"-m",
			"btu.scheduler_daemon",
			"status",
			"--socket",
			socket_path,
			"--check",
			check,
			*extra,
		],
		capture_output=True,
		text=True,
		cwd=str(REPO),
		timeout=60,
	)


def other_local_ipv4() -> str | None:
	"""An IPv4 address of this machine that is not a loopback address."""
	for addresses in psutil.net_if_addrs().values():
		for address in addresses:
			if address.family == socket.AF_INET and not address.address.startswith("127."):
				return address.address
	return None


def test_healthz_readyz_metrics_and_status_checks_of_a_leader(site_db, daemon_config, start_daemon):
	port = free_port()
	site_db.add_task("BTU-H1", "btu.scheduler_daemon.demo_tasks.record_run", {"path": "/dev/null"})
	site_db.add_schedule("TS-H1", "BTU-H1", "0 9 * * *")
	daemon_config(metrics_port=port)
	daemon = start_daemon()
	wait_for(lambda: daemon.request("ping").data.get("leader"), 15, what="the daemon to take the lease")
	log = daemon.output()
	assert (
		f"event=metrics_listening url=http://127.0.0.1:{port}/metrics "
		f"health=http://127.0.0.1:{port}/healthz ready=http://127.0.0.1:{port}/readyz"
	) in log

	status, live = get_json(port, "/healthz")
	assert status == 200, live
	assert live["alive"] is True and live["problems"] == []
	assert live["activities"] == {name: "running" for name in ACTIVITIES}
	assert live["socket"] == "ok"
	assert live["pid"] == daemon.process.pid

	status, ready = get_json(port, "/readyz")
	assert status == 200, ready
	assert ready["ready"] is True and ready["role"] == "leader" and ready["problems"] == []
	assert ready["redis"] == "ok" and ready["redis_error"] is None
	assert ready["bench_id"] == "testbench"
	assert ready["lease_holder"] == daemon.request("status").data["lease_holder"]
	assert ready["sites"] == {SITE: {"database": "ok", "error": None, "paused": False, "btu_installed": True}}

	status, content_type, body = get(port, "/metrics")
	assert status == 200 and content_type.startswith("text/plain") and b"btu_leader 1.0" in body
	status, _, body = get(port, "/healthz", method="HEAD")
	assert status == 200 and body == b""
	status, _, body = get(port, "/nothing-here")
	assert status == 404 and b"/healthz" in body
	# Probes leave no line in the event log.
	assert "GET /" not in daemon.output() and "HTTP/1" not in daemon.output()

	for check in ("live", "ready", "leader"):
		result = cli_check(daemon_config.socket_path, check)
		assert result.returncode == 0, (check, result.stdout, result.stderr)
		assert result.stdout.startswith(f"{check}: ok: ") and result.stdout.count("\n") == 1, result.stdout
	result = cli_check(daemon_config.socket_path, "ready", "--site", "other.localhost")
	assert result.returncode == 1 and "site other.localhost: not served by this daemon" in result.stdout
	# --check with --json: the JSON as before, the exit code of the check.
	result = cli_check(daemon_config.socket_path, "leader", "--json")
	assert result.returncode == 0 and json.loads(result.stdout)["leader"] is True

	daemon.stop()
	result = cli_check(daemon_config.socket_path, "live")
	assert result.returncode == 1 and result.stdout.startswith("live: FAIL: daemon down: "), result.stdout
	with pytest.raises(ConnectionRefusedError):
		get(port, "/healthz")


def test_a_standby_is_ready_but_not_leader(daemon_config, start_daemon, workdir):
	"""Two daemons of one bench (same Redis and bench_id, own sockets and ports): the second stands by."""
	port_a, port_b = free_port(), free_port()
	daemon_config(metrics_port=port_a)
	a = start_daemon("a")
	wait_for(lambda: a.request("ping").data.get("leader"), 15, what="a to take the lease")
	config_b = os.path.join(workdir, "b.toml")
	with open(daemon_config.path, encoding="utf-8") as handle:
		text = handle.read()
	socket_b = os.path.join(workdir, "b.sock")
	text = text.replace(daemon_config.socket_path, socket_b).replace(
		f"metrics_port = {port_a}", f"metrics_port = {port_b}"
	)
	with open(config_b, "w", encoding="utf-8") as handle:
		handle.write(text)
	b = DaemonProcess(workdir, config_b, socket_b, "b").start()
	try:
		status, ready = get_json(port_b, "/readyz")
		assert status == 200 and ready["ready"] is True, ready
		assert ready["role"] == "standby"
		assert ready["lease_holder"] == get_json(port_a, "/readyz")[1]["lease_holder"]
		assert get_json(port_a, "/readyz")[1]["role"] == "leader"
		assert cli_check(socket_b, "ready").returncode == 0
		result = cli_check(socket_b, "leader")
		assert result.returncode == 1, result.stdout
		assert (
			result.stdout.startswith("leader: FAIL: standby (lease held by ")
			and ready["lease_holder"] in result.stdout
		)

		a.stop()  # SIGTERM releases the lease: b takes over and says so
		wait_for(lambda: get_json(port_b, "/readyz")[1]["role"] == "leader", 20, 0.2, what="b to lead")
		assert cli_check(socket_b, "leader").returncode == 0
	finally:
		b.stop()


def _answer_once(port: int, wanted: int) -> tuple[int, dict] | None:
	status, body = get_json(port, "/readyz")
	return (status, body) if status == wanted else None


def test_redis_and_a_database_away_fail_readiness_not_liveness(site_db, workdir):
	redis_server = RedisServer(workdir).start()
	daemon, port = metrics_daemon(workdir, redis_server.url(0), SITE, site_db.name, site_db.args["user"], "h")
	try:
		daemon.start()
		wait_for(lambda: get_json(port, "/readyz")[0] == 200, 15, 0.2, what="ready")

		redis_server.stop()
		# (the answer is kept for READY_CACHE_SECONDS: the next one sees Redis away)
		status, ready = wait_for(lambda: _answer_once(port, 503), 10, 0.2, what="readiness to see Redis away")
		assert ready["ready"] is False, ready
		assert ready["role"] == "down" and ready["redis"] == "unreachable"
		assert "Connection refused" in ready["redis_error"] and ready["problems"][0].startswith("redis: ")
		status, live = get_json(port, "/healthz")
		assert status == 200 and live["alive"] is True, live  # a restart would not bring Redis back
		wait_for(
			lambda: cli_check(daemon.socket_path, "ready").returncode == 1,
			20,
			0.5,
			what="status to see Redis away",
		)
		result = cli_check(daemon.socket_path, "ready")
		assert result.stdout.startswith("ready: FAIL: redis unreachable"), result.stdout
		assert cli_check(daemon.socket_path, "live").returncode == 0

		redis_server.start()  # same port
		wait_for(lambda: get_json(port, "/readyz")[0] == 200, 30, 0.5, what="ready again with Redis back")

		site_db.drop()
		status, ready = wait_for(
			lambda: _answer_once(port, 503), 10, 0.2, what="readiness to see the database away"
		)
		assert ready["role"] in ("leader", "standby"), ready
		site = ready["sites"][SITE]
		assert site["database"] == "unreachable" and "Unknown database" in site["error"], site
		assert site["error"] and site_db.name in site["error"]
		assert ready["problems"] == [f"site {SITE}: database: {site['error']}"]
		assert get_json(port, "/healthz")[0] == 200
		wait_for(
			lambda: cli_check(daemon.socket_path, "ready").returncode == 1,
			20,
			0.5,
			what="status to see the database away",
		)
		assert f"site {SITE}: database unreachable" in cli_check(daemon.socket_path, "ready").stdout
		init_database(site_db.args, site_db.name)
		wait_for(
			lambda: get_json(port, "/readyz")[0] == 200, 30, 0.5, what="ready again with the database back"
		)
	finally:
		daemon.stop()
		redis_server.stop()


def test_liveness_fails_when_the_socket_file_is_gone(daemon_config, start_daemon):
	"""A socket file removed under a running daemon (a /tmp cleaner, a volume remounted) leaves a
	process that nobody can reach: liveness says so, so that an orchestrator restarts it."""
	port = free_port()
	daemon_config(metrics_port=port)
	daemon = start_daemon()
	wait_for(lambda: get(port, "/healthz")[0] == 200, 10, 0.1, what="every activity running")
	os.unlink(daemon_config.socket_path)
	assert daemon.process.alive()
	status, live = get_json(port, "/healthz")
	assert status == 503 and live["alive"] is False, live
	assert live["socket"].startswith("BTU scheduler daemon is not running at"), live
	assert live["problems"] == [f"the socket does not answer: {live['socket']}"]
	assert live["activities"] == {name: "running" for name in ACTIVITIES}


def test_metrics_host_decides_where_the_endpoint_listens(daemon_config, start_daemon):
	address = other_local_ipv4()
	if address is None:
		pytest.skip("this machine has no IPv4 address other than loopback to probe from")
	port = free_port()
	daemon_config(metrics_port=port)  # the default: 127.0.0.1 only
	local = start_daemon("local")
	wait_for(lambda: get(port, "/healthz")[0] == 200, 10, 0.1, what="every activity running")
	with pytest.raises(ConnectionRefusedError):
		get(port, "/healthz", host=address)
	local.stop()

	port = free_port()
	daemon_config(metrics_port=port, metrics_host="0.0.0.0")  # every interface: a container's probes
	daemon = start_daemon("every")
	wait_for(lambda: get(port, "/healthz")[0] == 200, 10, 0.1, what="every activity running")
	assert f"event=metrics_listening url=http://0.0.0.0:{port}/metrics" in daemon.output()
	status, _, body = get(port, "/healthz", host=address)
	assert status == 200, body
	assert get_json(port, "/readyz", host=address)[1]["role"] == "leader"
	status = daemon.request("status").data
	assert (status["metrics_host"], status["metrics_port"]) == ("0.0.0.0", port)
	result = subprocess.run(
		[sys.executable, "-m", "btu.scheduler_daemon", "status", "--socket", daemon_config.socket_path],
		capture_output=True,
		text=True,
		cwd=str(REPO),
		timeout=60,
	)
	assert f"metrics   http://0.0.0.0:{port}/metrics  (/healthz, /readyz)" in result.stdout


def test_metrics_host_configuration(tmp_path):
	toml = tmp_path / "btu.toml"
	write_toml(str(toml), {"metrics_host": "::"}, {"s.localhost": {"db_name": "x"}})
	assert load_config(config_file=str(toml), environ={}).metrics_host == "::"
	assert load_config(config_file=str(toml), environ={"BTU_METRICS_HOST": "btu-1.example"}).metrics_host == (
		"btu-1.example"
	)
	write_toml(str(toml), {}, {"s.localhost": {"db_name": "x"}})
	assert load_config(config_file=str(toml), environ={}).metrics_host == "127.0.0.1"
	bench = make_bench(
		tmp_path,
		{"btu_metrics_host": "0.0.0.0", "btu_metrics_port": 9108},
		{"a.localhost": {"db_name": "_a"}},
	)
	config = load_config(str(bench), environ={})
	assert (config.metrics_host, config.metrics_port) == ("0.0.0.0", 9108)
	for bad in ("0.0.0.0:9108", "not a host", "http://x", "a..b", ""):
		with pytest.raises(ConfigError) as info:
			load_config(config_file=str(toml), environ={"BTU_METRICS_HOST": bad})
		assert str(info.value).startswith(
			f"environment variable BTU_METRICS_HOST: key 'metrics_host' is {bad!r}; expected an IP address"
		), str(info.value)
