"""Configuration: bench discovery < TOML < BTU_* environment < command line; clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from btu.scheduler_daemon.config import ConfigError, load_config

from .services import REPO, write_toml


def make_bench(root: Path, common: dict, sites: dict[str, dict]) -> Path:
	bench = root / "frappe-bench"
	(bench / "apps").mkdir(parents=True)
	(bench / "sites").mkdir()
	(bench / "sites" / "common_site_config.json").write_text(json.dumps(common))
	for name, conf in sites.items():
		(bench / "sites" / name).mkdir()
		(bench / "sites" / name / "site_config.json").write_text(json.dumps(conf))
	(bench / "sites" / "assets").mkdir()  # not a site: no site_config.json
	return bench


def test_bench_discovery_reads_common_and_site_configs(tmp_path):
	bench = make_bench(
		tmp_path,
		{
			"redis_queue": "redis://127.0.0.1:11000",
			"db_host": "10.0.0.5",
			"use_rq_auth": 1,
			"rq_password": "s3cret",
		},
		{
			"a.localhost": {"db_name": "_aaa", "db_password": "pa"},
			"b.localhost": {"db_name": "_bbb", "db_password": "pb", "db_port": 3307},
		},
	)
	config = load_config(str(bench), environ={})
	assert [s.name for s in config.sites] == ["a.localhost", "b.localhost"]
	a, b = config.sites
	assert (a.db_name, a.db_user, a.db_password, a.db_host, a.db_port) == (
		"_aaa",
		"_aaa",
		"pa",
		"10.0.0.5",
		3306,
	)
	assert b.db_port == 3307
	assert config.redis_url == "redis://127.0.0.1:11000"
	assert config.job_mode == "frappe"
	expected_id = str(bench.resolve()).strip("/").replace("/", "-")
	assert config.bench_id == expected_id
	assert config.queue_prefix == f"{expected_id}:"
	assert config.redis_username == expected_id and config.redis_password == "s3cret"
	assert config.socket_path == str(bench.resolve() / "config" / "btu_scheduler.sock")
	assert "s3cret" not in json.dumps(config.redacted(), default=str)


def test_bench_id_and_site_selection(tmp_path):
	bench = make_bench(
		tmp_path,
		{"bench_id": "prod", "redis_queue": "redis://127.0.0.1:11000"},
		{"a.localhost": {"db_name": "_a"}, "b.localhost": {"db_name": "_b"}},
	)
	config = load_config(str(bench), ["b.localhost"], environ={})
	assert config.bench_id == "prod" and config.queue_prefix == "prod:"
	assert [s.name for s in config.sites] == ["b.localhost"]
	with pytest.raises(ConfigError, match="site 'zzz' does not exist"):
		load_config(str(bench), ["zzz"], environ={})


def test_bench_reached_through_a_symlink_gets_frappes_bench_id_and_socket(tmp_path):
	"""Frappe's get_bench_id uses the bench's real path; a daemon started with a symlinked path must
	put its jobs in the queues the bench's workers read (and listen where Desk talks)."""
	bench = make_bench(
		tmp_path, {"redis_queue": "redis://127.0.0.1:11000"}, {"a.localhost": {"db_name": "_a"}}
	)
	link = tmp_path / "current"
	link.symlink_to(bench)
	config = load_config(str(link), environ={})
	real = str(bench.resolve())
	assert config.bench_id == real.strip("/").replace("/", "-")
	assert config.queue_prefix == config.bench_id + ":"
	assert config.bench_path == real
	assert config.socket_path == f"{real}/config/btu_scheduler.sock"


def test_bench_rq_ttls_are_the_ones_frappe_gives_its_jobs(tmp_path):
	bench = make_bench(
		tmp_path, {"rq_results_ttl": 120, "rq_job_failure_ttl": 86400}, {"a": {"db_name": "_a"}}
	)
	config = load_config(str(bench), environ={})
	assert (config.result_ttl, config.failure_ttl) == (120, 86400)
	default = load_config(str(make_bench(tmp_path / "other", {}, {"a": {"db_name": "_a"}})), environ={})
	assert (default.result_ttl, default.failure_ttl) == (600, 7 * 24 * 3600)  # Frappe v15's defaults
	broken = make_bench(tmp_path / "broken", {"rq_results_ttl": "soon"}, {"a": {"db_name": "_a"}})
	with pytest.raises(
		ConfigError, match=r"common_site_config.json \(rq_results_ttl\): key 'result_ttl' is 'soon'"
	):
		load_config(str(broken), environ={})


def test_precedence_bench_then_toml_then_environment_then_command_line(tmp_path):
	bench = make_bench(
		tmp_path, {"redis_queue": "redis://127.0.0.1:11000"}, {"a.localhost": {"db_name": "_a"}}
	)
	toml = write_toml(
		str(tmp_path / "btu.toml"),
		{"misfire_grace": 100, "full_refresh_interval": 60, "log_level": "debug"},
		{},
	)
	environ = {"BTU_MISFIRE_GRACE": "200", "BTU_LOG_LEVEL": "WARNING"}
	config = load_config(str(bench), config_file=toml, environ=environ, overrides={"log_level": "ERROR"})
	assert config.full_refresh_interval == 60  # TOML over default
	assert config.misfire_grace == 200  # environment over TOML
	assert config.log_level == "ERROR"  # command line over environment
	assert config.redis_url == "redis://127.0.0.1:11000"  # bench value kept


def test_standalone_toml_with_original_daemon_key_names(tmp_path):
	path = tmp_path / "btu_scheduler.toml"
	path.write_text(
		'name = "BTU Scheduler Daemon"\nenvironment_name = "DEV"\nfull_refresh_internal_secs = 900\n'
		'scheduler_polling_interval = 60\ntime_zone_string = "America/Los_Angeles"\ntracing_level = "INFO"\n'
		'mysql_user = "root"\nmysql_password = "pw"\nmysql_host = "127.0.0.1"\nmysql_port = 3313\n'
		'mysql_database = "_abc123"\nrq_host = "127.0.0.1"\nrq_port = 11000\nsocket_path = "/tmp/x.sock"\n'
		'socket_file_group_owner = "frappe"\n'
	)
	config = load_config(config_file=str(path), environ={})
	assert config.full_refresh_interval == 900 and config.default_timezone == "America/Los_Angeles"
	assert config.socket_group == "frappe" and config.socket_path == "/tmp/x.sock"
	site = config.sites[0]
	assert (site.db_name, site.db_user, site.db_password, site.db_port) == ("_abc123", "root", "pw", 3313)
	assert config.job_mode == "plain"


def test_environment_only_configuration():
	config = load_config(
		environ={
			"BTU_DB_NAME": "btu",
			"BTU_DB_USER": "u",
			"BTU_REDIS_URL": "redis://h:1/2",
			"BTU_JOB_MODE": "frappe",
			"BTU_BENCH_ID": "x",
		}
	)
	assert config.sites[0].db_name == "btu" and config.redis_url == "redis://h:1/2"
	assert config.queue_prefix == "x:"


@pytest.mark.parametrize(
	"values,fragment",
	[
		(
			{"full_refresh_interval": "often"},
			"key 'full_refresh_interval' is 'often'; expected a whole number",
		),
		({"full_refresh_interval": 0}, "key 'full_refresh_interval' is 0; expected a whole number from 1"),
		({"misfire_grace": True}, "key 'misfire_grace' is True"),
		({"job_mode": "cloud"}, "key 'job_mode' is 'cloud'; expected one of frappe, plain"),
		({"redis_url": "http://x"}, "key 'redis_url' is 'http://x'; expected a Redis URL"),
		(
			{"default_timezone": "Mars/Base"},
			"key 'default_timezone' is 'Mars/Base'; expected an IANA time zone",
		),
		({"log_level": "LOUD"}, "key 'log_level' is 'LOUD'"),
		({"colour": "blue"}, "key 'colour' is unknown"),
		({"socket_path": "/tmp/" + "x" * 120}, "key 'socket_path' is 125 bytes long; expected at most 107"),
	],
)
def test_bad_values_name_the_key_the_file_and_what_was_expected(tmp_path, values, fragment):
	path = write_toml(str(tmp_path / "bad.toml"), values, {"s": {"db_name": "d", "db_user": "u"}})
	with pytest.raises(ConfigError) as info:
		load_config(config_file=path, environ={})
	message = str(info.value)
	assert fragment in message and "\n" not in message
	if "socket_path" not in fragment:
		assert path in message


def test_bad_site_values(tmp_path):
	path = write_toml(str(tmp_path / "bad.toml"), {}, {"s": {"db_name": "d", "db_port": "x"}})
	with pytest.raises(
		ConfigError, match=r"bad.toml: key 'db_port' is 'x'; expected a whole number from 1 to 65535"
	):
		load_config(config_file=path, environ={})
	path = write_toml(str(tmp_path / "bad2.toml"), {}, {"s": {"db_user": "u"}})
	with pytest.raises(ConfigError, match="key 'db_name' is missing for site 's'"):
		load_config(config_file=path, environ={})


def test_bad_environment_value_names_the_variable():
	with pytest.raises(ConfigError, match="environment variable BTU_LEASE_TTL: key 'lease_ttl' is 'soon'"):
		load_config(environ={"BTU_DB_NAME": "x", "BTU_LEASE_TTL": "soon"})


def test_no_site_at_all_is_a_clear_error():
	with pytest.raises(ConfigError, match="no site defined"):
		load_config(environ={})


def test_broken_files(tmp_path):
	broken = tmp_path / "b.toml"
	broken.write_text("job_mode = [")
	with pytest.raises(ConfigError, match="invalid TOML"):
		load_config(config_file=str(broken), environ={})
	bench = make_bench(tmp_path, {}, {"a": {"db_name": "x"}})
	(bench / "sites" / "a" / "site_config.json").write_text("{oops")
	with pytest.raises(ConfigError, match=r"site_config.json: invalid JSON at line 1, column 2"):
		load_config(str(bench), environ={})
	with pytest.raises(ConfigError, match="not a bench"):
		load_config(str(tmp_path / "nowhere"), environ={})


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
	environment = {k: v for k, v in os.environ.items() if not k.startswith("BTU_")}
	environment.update(env or {})
	return subprocess.run(
		[sys.executable, "-m", "btu.scheduler_daemon", *args],
		capture_output=True,
		text=True,
		cwd=str(REPO),
		env=environment,
		timeout=60,
	)


def test_daemon_refuses_to_start_on_bad_config_with_one_line_and_non_zero_exit(tmp_path):
	path = write_toml(str(tmp_path / "bad.toml"), {"lease_ttl": -5}, {"s": {"db_name": "d"}})
	result = run_cli("run", "--config", path)
	assert result.returncode == 2
	lines = result.stderr.strip().splitlines()
	assert len(lines) == 1 and "key 'lease_ttl' is -5" in lines[0] and path in lines[0]
	result = run_cli("check-config", "--config", path)
	assert result.returncode == 2 and "lease_ttl" in result.stderr


def test_check_config_reaches_services_and_fails_when_they_are_down(tmp_path, redis_url, site_db):
	good = write_toml(
		str(tmp_path / "good.toml"),
		{"redis_url": redis_url},
		{"s": {"db_name": site_db.name, "db_user": "root"}},
	)
	result = run_cli("check-config", "--config", good)
	assert result.returncode == 0, result.stderr
	assert "redis: ok" in result.stdout and f"site s: database ok ({site_db.name}" in result.stdout
	down = write_toml(
		str(tmp_path / "down.toml"),
		{"redis_url": "redis://127.0.0.1:1/0"},
		{"s": {"db_name": site_db.name, "db_user": "root", "db_port": 1}},
	)
	result = run_cli("check-config", "--config", down)
	assert result.returncode == 1
	assert "redis: UNREACHABLE" in result.stderr and "site s: database UNREACHABLE" in result.stderr


def test_max_db_connections_is_checked(tmp_path):
	path = write_toml(str(tmp_path / "c.toml"), {"max_db_connections": 2}, {"s": {"db_name": "d"}})
	with pytest.raises(
		ConfigError, match=r"c.toml: key 'max_db_connections' is 2; expected a whole number from 3 to 1000"
	):
		load_config(config_file=path, environ={})
	assert load_config(config_file=path, environ={"BTU_MAX_DB_CONNECTIONS": "12"}).max_db_connections == 12
	bench = make_bench(tmp_path / "b", {"btu_max_db_connections": 20}, {"a": {"db_name": "x"}})
	assert load_config(str(bench), environ={}).max_db_connections == 20


def test_a_broken_site_config_is_skipped_not_fatal(tmp_path):
	bench = make_bench(tmp_path, {}, {"a": {"db_name": "x"}, "b": {"db_name": "y"}, "c": {"db_port": 1}})
	(bench / "sites" / "b" / "site_config.json").write_text("{oops")
	config = load_config(str(bench), environ={})
	assert [site.name for site in config.sites] == ["a"]
	skipped = dict(config.skipped_sites)
	assert "invalid JSON at line 1, column 2" in skipped["b"]
	assert "key 'db_name' is missing" in skipped["c"]
