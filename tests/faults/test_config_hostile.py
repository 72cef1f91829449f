"""Broken configuration files: every key missing or of the wrong type stops ``check-config`` and
``run`` with a non-zero exit and one line naming the key and the file (secrets never shown)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from .harness import STATS, run_cli

pytestmark = pytest.mark.faults
SECRET = "S3cret-Value-42"

BASE = {"redis_url": "redis://127.0.0.1:1/0", "socket_path": "/tmp/btu-cfg-test.sock"}
SITE = {"db_name": "btu_cfg_test", "db_user": "root", "db_host": "127.0.0.1", "db_port": 3306}

# (key, bad TOML value) for every top-level key; several wrong types each
DAEMON_CASES = [
	("redis_url", "123"),
	("redis_url", '"http://example.com"'),
	("redis_url", '""'),
	("redis_url", "[1]"),
	("redis_username", "123"),
	("redis_username", "[]"),
	("redis_password", "12345"),
	("redis_password", f'["{SECRET}"]'),
	("redis_password", "{ a = 1 }"),
	("bench_path", "123"),
	("bench_path", '"   "'),
	("bench_id", "1"),
	("bench_id", '""'),
	("bench_id", "true"),
	("socket_path", "5"),
	("socket_path", '""'),
	("socket_path", '"/tmp/' + "s" * 200 + '.sock"'),
	("socket_group", "5"),
	("socket_group", "[]"),
	("job_mode", '"cron"'),
	("job_mode", "1"),
	("queue_prefix", "1"),
	("queue_prefix", "[]"),
	("key_prefix", '""'),
	("key_prefix", "2"),
	("full_refresh_interval", '"often"'),
	("full_refresh_interval", "0"),
	("full_refresh_interval", "-5"),
	("full_refresh_interval", "1.5"),
	("full_refresh_interval", "true"),
	("full_refresh_interval", "99999999999"),
	("full_refresh_interval", "inf"),
	("full_refresh_interval", "nan"),
	("misfire_grace", '"an hour"'),
	("misfire_grace", "-1"),
	("misfire_grace", "[3600]"),
	("lease_ttl", "1"),
	("lease_ttl", '"abc"'),
	("lease_ttl", "0"),
	("lease_ttl", "1e3"),
	("default_timezone", '"Mars/Base"'),
	("default_timezone", "1"),
	("default_timezone", '""'),
	("default_timezone", '"../../etc/passwd"'),
	("job_user", '""'),
	("job_user", "1"),
	("result_ttl", '"x"'),
	("result_ttl", "-2"),
	("failure_ttl", '"x"'),
	("failure_ttl", "1.0"),
	("log_level", '"LOUD"'),
	("log_level", "1"),
	("metrics_port", "0"),
	("metrics_port", "70000"),
	("metrics_port", '"x"'),
	("metrics_host", "1"),
	("metrics_host", '""'),
	("metrics_host", '"0.0.0.0:9108"'),
	("metrics_host", '"not a host"'),
	("bogus_key", "1"),
]
SITE_CASES = [
	("db_name", "1"),
	("db_name", '""'),
	("db_user", "1"),
	("db_user", '""'),
	("db_password", "12345"),
	("db_password", f'["{SECRET}"]'),
	("db_host", "1"),
	("db_host", '""'),
	("db_port", '"x"'),
	("db_port", "0"),
	("db_port", "70000"),
	("db_port", "3306.5"),
	("db_socket", "1"),
	("redis_url", '"http://x"'),
	("bogus_site_key", "1"),
]


def render(top: dict, site: dict | None, overrides: dict[str, str] | None = None, site_overrides=None) -> str:
	def toml(value):
		return (
			value
			if isinstance(value, str) and value[:1] in '"[{' or not isinstance(value, str)
			else f'"{value}"'
		)

	lines = [f"{k} = {toml(v) if not isinstance(v, int) else v}" for k, v in top.items()]
	lines += [f"{k} = {v}" for k, v in (overrides or {}).items()]
	if site is not None:
		lines.append('[sites."cfg.localhost"]')
		lines += [f"{k} = {toml(v) if not isinstance(v, int) else v}" for k, v in site.items()]
		lines += [f"{k} = {v}" for k, v in (site_overrides or {}).items()]
	return "\n".join(lines) + "\n"


def _check(path: str, key: str, command: str = "check-config") -> str | None:
	result = run_cli(command, "--config", path)
	lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
	problems = []
	if result.returncode == 0:
		problems.append("exit code 0")
	if len(lines) != 1:
		problems.append(f"{len(lines)} lines")
	text = " ".join(lines)
	if f"'{key}'" not in text and f"'{key}." not in text:
		problems.append("key not named")
	if path not in text:
		problems.append("file not named")
	if SECRET in text or "12345" in text and "password" in key:
		problems.append("secret shown")
	return f"{key} ({command}): {', '.join(problems)}: {text[:300]}" if problems else None


def test_every_key_missing_or_of_the_wrong_type(tmp_path):
	cases = []
	for i, (key, value) in enumerate(DAEMON_CASES):
		top = {k: v for k, v in BASE.items() if k != key}
		path = tmp_path / f"daemon-{i}.toml"
		path.write_text(render(top, SITE, {key: value}))
		cases.append((str(path), key))
	for i, (key, value) in enumerate(SITE_CASES):
		site = {k: v for k, v in SITE.items() if k != key}
		path = tmp_path / f"site-{i}.toml"
		path.write_text(render(BASE, site, site_overrides={key: value}))
		cases.append((str(path), key))
	# Missing: the only required key (db_name), and the sites themselves.
	path = tmp_path / "no-db-name.toml"
	path.write_text(render(BASE, {k: v for k, v in SITE.items() if k != "db_name"}))
	cases.append((str(path), "db_name"))
	for name, text in (
		("no-sites.toml", render(BASE, None)),
		("empty.toml", ""),
		("sites-not-table.toml", render(BASE, None, {"sites": "1"})),
		("site-not-table.toml", render(BASE, None, {"sites": '{ "a" = 1 }'})),
	):
		path = tmp_path / name
		path.write_text(text)
		cases.append((str(path), "sites"))
	for path, _key in cases:
		os.chmod(path, 0o600)
	with ThreadPoolExecutor(4) as pool:
		problems = [p for p in pool.map(lambda case: _check(*case), cases) if p]
		# `run` refuses the same files the same way (a sample: it would start a daemon otherwise).
		sample = cases[::7]
		problems += [p for p in pool.map(lambda case: _check(*case, command="run"), sample) if p]
	STATS.begin("test_every_key_missing_or_of_the_wrong_type")
	STATS.add("test_every_key_missing_or_of_the_wrong_type", bad_inputs_sent=len(cases) + len(sample))
	assert not problems, (
		f"{len(problems)} of {len(cases) + len(sample)} broken configurations:\n" + "\n".join(problems)
	)


def test_unreadable_or_invalid_files(tmp_path):
	missing = str(tmp_path / "nope.toml")
	invalid = tmp_path / "invalid.toml"
	invalid.write_text('lease_ttl = = 3\n[sites."a"\n')
	for path in (missing, str(invalid)):
		result = run_cli("check-config", "--config", path)
		lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
		assert result.returncode != 0 and len(lines) == 1 and path in lines[0], lines
