"""The optional Prometheus endpoint of a real daemon: metric names and values."""

from __future__ import annotations

import os
import socket
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from btu.scheduler_daemon.schema import init_database

from .conftest import SITE
from .services import RedisServer, free_port, metrics_daemon, wait_for

RECORD = "btu.scheduler_daemon.demo_tasks.record_run"


def scrape(port: int) -> dict[tuple[str, tuple], float]:
	"""Every sample as {(name, sorted labels): value}."""
	with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
		assert response.status == 200
		assert response.headers["Content-Type"].startswith("text/plain")
		text = response.read().decode()
	samples = {}
	for family in text_string_to_metric_families(text):
		for sample in family.samples:
			samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
	return samples


def value(samples: dict, name: str, **labels: str) -> float:
	return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_endpoint_of_a_real_daemon(site_db, start_daemon, daemon_config, workdir):
	port = free_port()
	site_db.add_task("BTU-00001", RECORD, {"path": os.path.join(workdir, "runs.txt")})
	site_db.add_schedule("TS-000001", "BTU-00001", "* * * * * *")
	site_db.add_schedule("TS-000002", "BTU-00001", "0 9 * * *", "Europe/Paris")
	site_db.add_schedule("TS-000003", "BTU-00404", "0 9 * * *")  # no such task: invalid
	daemon_config(metrics_port=port)
	daemon = start_daemon()
	assert f"event=metrics_listening url=http://127.0.0.1:{port}/metrics" in daemon.output()
	wait_for(lambda: daemon.request("status").data["counters"]["runs_enqueued"] >= 3, 20, what="three runs")
	wait_for(lambda: not daemon.request("status").data["refresh"]["running"], what="refresh complete")

	samples = scrape(port)
	status = daemon.request("status").data
	assert (
		value(samples, "btu_daemon_info", version=status["version"], job_mode="plain", bench_id="testbench")
		== 1
	)
	assert abs(value(samples, "btu_daemon_start_time_seconds") - status["started_at"]) < 1
	assert value(samples, "btu_leader") == 1
	assert value(samples, "btu_redis_up") == 1
	assert value(samples, "btu_sql_up", site=SITE) == 1
	assert value(samples, "btu_schedules", site=SITE) == 2
	assert value(samples, "btu_schedules_invalid", site=SITE) == 1
	enqueued = value(samples, "btu_runs_enqueued_total")
	assert 3 <= enqueued <= daemon.request("status").data["counters"]["runs_enqueued"]
	# every enqueued run was observed in the lateness histogram; runs on time are well under a second late
	assert value(samples, "btu_enqueue_lateness_seconds_count") == enqueued
	assert value(samples, "btu_enqueue_lateness_seconds_bucket", le="+Inf") == enqueued
	assert value(samples, "btu_enqueue_lateness_seconds_bucket", le="1.0") >= enqueued - 1
	assert 0 <= value(samples, "btu_enqueue_lateness_seconds_sum") < enqueued
	assert value(samples, "btu_runs_skipped_misfire_total") == 0
	assert value(samples, "btu_refreshes_total") >= 1
	assert value(samples, "btu_refresh_running") == 0
	assert 0 <= value(samples, "btu_refresh_last_duration_seconds") < 10
	assert value(samples, "btu_redis_reconnects_total") == 0
	assert value(samples, "btu_sql_reconnects_total") == 0
	assert value(samples, "btu_internal_queue_size", lane="bulk") >= 0

	# socket requests and errors are counted
	before = scrape(port)
	for _ in range(3):
		assert daemon.request("ping").ok
	with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
		sock.connect(daemon_config.socket_path)
		sock.sendall(b"this is not json\n")
		assert b'"ok": false' in sock.recv(65536)
	after = scrape(port)
	assert value(after, "btu_socket_requests_total") - value(before, "btu_socket_requests_total") == 3
	assert value(after, "btu_socket_errors_total") - value(before, "btu_socket_errors_total") == 1


def test_reconnects_are_counted(site_db, workdir):
	"""Redis restarted and the site's database gone and back: each is one reconnect."""
	redis_server = RedisServer(workdir).start()
	daemon, port = metrics_daemon(workdir, redis_server.url(0), SITE, site_db.name, site_db.args["user"], "m")
	try:
		daemon.start()
		wait_for(lambda: value(scrape(port), "btu_refreshes_total") >= 1, what="first refresh")
		redis_server.stop()
		wait_for(lambda: value(scrape(port), "btu_redis_up") == 0, 15, what="Redis seen down")
		redis_server.start()  # same port
		wait_for(lambda: value(scrape(port), "btu_redis_up") == 1, 30, what="Redis seen up again")
		assert value(scrape(port), "btu_redis_reconnects_total") == 1

		site_db.drop()
		wait_for(lambda: value(scrape(port), "btu_sql_up", site=SITE) == 0, 15, what="database seen down")
		init_database(site_db.args, site_db.name)
		wait_for(lambda: value(scrape(port), "btu_sql_up", site=SITE) == 1, 30, what="database seen up again")
		samples = scrape(port)
		assert value(samples, "btu_sql_reconnects_total") == 1
		assert value(samples, "btu_redis_reconnects_total") == 1
	finally:
		daemon.stop()
		redis_server.stop()


def test_metrics_port_in_use_is_logged_and_the_daemon_goes_on_without_metrics(daemon_config, start_daemon):
	"""Metrics are optional: a taken port must never stop the daemon (under `bench start` a daemon
	that exits stops the whole bench). It logs why, serves its socket, says so in `status`, and
	serves the metrics once the port is free (it retries)."""
	busy = socket.socket()
	busy.bind(("127.0.0.1", 0))
	busy.listen(1)
	port = busy.getsockname()[1]
	try:
		daemon_config(metrics_port=port)
		daemon = start_daemon()
		wait_for(lambda: "event=metrics_unavailable" in daemon.output(), what="metrics_unavailable logged")
		assert (
			f'error="metrics_port {port}: cannot listen on 127.0.0.1:{port} (Address already in use); '
			'choose a free port or unset metrics_port."'
		) in daemon.output()
		assert daemon.process.alive()
		reply = daemon.request("status")
		assert reply.ok, reply.message
		assert "Address already in use" in reply.data["metrics_error"]
		assert daemon.request("ping").ok
	finally:
		busy.close()
