"""Upgrading from the original BTU: its TOML key names load and work; DocType and field names are
unchanged; every upgrade patch is the one docs/upgrading.md describes."""

from __future__ import annotations

import grp
import json
import os
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis

from btu.contracts.redis_keys import KEYS
from btu.scheduler_daemon.config import ConfigError, load_config
from btu.scheduler_daemon.schema import DOCTYPE_DIR

from .services import DaemonProcess, RedisServer, wait_for

# The example btu_scheduler.toml of the original (Rust) daemon's documentation, every key kept.
ORIGINAL_TOML = """
name = "BTU Scheduler Daemon"
environment_name = "DEV"
full_refresh_internal_secs = 900
scheduler_polling_interval=60
time_zone_string="America/Los_Angeles"
tracing_level="INFO"

# Email Setup
email_address_from = "my_email_account@example.com"
email_host_name = "smtp.my_mail_server.com"
email_host_port = 587
email_account_name = "my_email_account@example.com"
email_account_password  = "my_email_password"

# Email Features
email_addresses = [ "someone@example.com" ]
email_on_level="INFO"
email_when_queuing=true

# MySQL
mysql_user = "{db_user}"
mysql_password = "{db_password}"
mysql_host = "{db_host}"
mysql_port = {db_port}
mysql_database = "{db_name}"

# RQ
rq_host = "127.0.0.1"
rq_port = {rq_port}
socket_path = "{socket_path}"
socket_file_group_owner = "{group}"
webserver_ip = "127.0.0.1"
webserver_port = 8000
webserver_token = "token abcdefghij12345:lmnopq678901234"
"""

# What the original daemon printed as a starting configuration when it found none.
ORIGINAL_DEFAULT_TOML = """full_refresh_internal_secs = 180
time_zone_string = "US/Eastern"
mysql_user = "root"
mysql_password = "foo"
mysql_host = "127.0.0.1"
mysql_port = 3306
mysql_database = "bar"
rq_host = "127.0.0.1"
rq_port = 11000
scheduler_polling_interval = 60
socket_path = "/tmp/btu_scheduler.sock"
socket_file_group_owner = "frappe_group"
webserver_ip = "127.0.0.1"
webserver_port = 8000
webserver_token = "token: abcd1234"
"""


def primary_group() -> str:
	return grp.getgrgid(os.getgid()).gr_name


def test_original_toml_key_names_load(tmp_path):
	path = tmp_path / "btu_scheduler.toml"
	path.write_text(
		ORIGINAL_TOML.format(
			db_user="erp",
			db_password="pw",
			db_host="10.1.2.3",
			db_port=3313,
			db_name="_0a1b2c",
			rq_port=11000,
			socket_path="/tmp/btu_scheduler.sock",
			group="erpnext_group",
		)
	)
	config = load_config(config_file=str(path), environ={})
	assert config.full_refresh_interval == 900  # full_refresh_internal_secs (sic)
	assert config.default_timezone == "America/Los_Angeles"  # time_zone_string
	assert config.log_level == "INFO"  # tracing_level
	assert config.socket_group == "erpnext_group"  # socket_file_group_owner
	assert config.socket_path == "/tmp/btu_scheduler.sock"
	assert config.redis_url == "redis://127.0.0.1:11000/0"  # rq_host + rq_port
	assert config.job_mode == "plain"  # outside a bench
	(site,) = config.sites
	assert (site.name, site.db_name, site.db_user, site.db_password, site.db_host, site.db_port) == (
		"default",
		"_0a1b2c",
		"erp",
		"pw",
		"10.1.2.3",
		3313,
	)

	default = tmp_path / "default.toml"
	default.write_text(ORIGINAL_DEFAULT_TOML)
	config = load_config(config_file=str(default), environ={})
	assert config.full_refresh_interval == 180 and config.default_timezone == "US/Eastern"
	assert config.redis_url == "redis://127.0.0.1:11000/0" and config.sites[0].db_name == "bar"


def test_original_keys_with_new_ones_and_bad_values(tmp_path):
	path = tmp_path / "mixed.toml"
	path.write_text(
		'redis_url = "redis://10.0.0.9:6380/2"\nrq_host = "127.0.0.1"\nrq_port = 11000\n'
		'mysql_database = "x"\nmysql_user = "u"\nmisfire_grace = 60\n'
	)
	config = load_config(config_file=str(path), environ={})
	assert config.redis_url == "redis://10.0.0.9:6380/2"  # an explicit redis_url wins over rq_host/rq_port
	assert config.misfire_grace == 60

	path.write_text('rq_host = "127.0.0.1"\nrq_port = "eleven"\nmysql_database = "x"\n')
	with pytest.raises(
		ConfigError, match=r"mixed.toml: key 'rq_port' is 'eleven'; expected a whole number from 1"
	):
		load_config(config_file=str(path), environ={})
	path.write_text('full_refresh_internal_secs = 0\nmysql_database = "x"\n')
	with pytest.raises(ConfigError, match=r"key 'full_refresh_interval' is 0"):
		load_config(config_file=str(path), environ={})


def test_daemon_runs_from_an_original_toml(workdir, site_db):
	"""The original file, pointed at a private Redis and this test's database, runs the daemon as is."""
	server = RedisServer(workdir).start()
	socket_path = os.path.join(workdir, "orig.sock")
	path = Path(workdir) / "btu_scheduler.toml"
	path.write_text(
		ORIGINAL_TOML.format(
			db_user=site_db.args["user"],
			db_password=site_db.args["password"],
			db_host=site_db.args["host"],
			db_port=site_db.args["port"],
			db_name=site_db.name,
			rq_port=server.port,
			socket_path=socket_path,
			group=primary_group(),
		)
	)
	site_db.add_task("BTU-00001", "btu.scheduler_daemon.demo_tasks.say_hello")
	site_db.add_schedule("TS-000001", "BTU-00001", "0 9 * * *", None)  # no zone of its own
	# ... and no BTU Configuration time zone in the site: BTU's daemon then falls back to its
	# default_timezone, which the original file's time_zone_string sets. (The original daemon itself
	# only printed with time_zone_string; it read rules in tabSingles' cron_time_zone and ran
	# nothing without one. After the upgrade every schedule has a zone of its own: see
	# tests/test_upgrade_fire_times.py.)
	site_db.execute(
		"DELETE FROM `tabSingles` WHERE doctype = 'BTU Configuration' AND field = 'cron_time_zone'"
	)
	daemon = DaemonProcess(workdir, str(path), socket_path).start()
	try:
		client = redis.Redis(port=server.port)
		runs = wait_for(
			lambda: client.zrange(KEYS.next_runs("default"), 0, -1, withscores=True),
			15,
			what="the schedule in the Redis named by rq_host/rq_port",
		)
		((name, fire),) = runs
		assert name == b"TS-000001"
		local = datetime.fromtimestamp(fire, ZoneInfo("America/Los_Angeles"))
		assert (local.hour, local.minute) == (9, 0)
		status = daemon.request("status").data
		assert status["full_refresh_interval"] == 900
		assert "event=daemon_started" in daemon.output()
	finally:
		daemon.stop()
		server.stop()


# Field names of the original BTU app that existing sites hold data in (see docs/architecture.md, "Data model").
ORIGINAL_FIELDS = {
	"BTU Task": [
		"desc_short",
		"desc_long",
		"function_string",
		"arguments",
		"max_task_duration",
		"queue_name",
		"run_only_as_worker",
		"is_transient",
		"repeat_log_in_stdout",
		"task_group",
		"last_runtime",
	],
	"BTU Task Schedule": [
		"task",
		"task_description",
		"enabled",
		"queue_name",
		"run_frequency",
		"minute",
		"hour",
		"day_of_week",
		"day_of_month",
		"month",
		"cron_string",
		"schedule_description",
		"argument_overrides",
		"email_recipients",
		"redis_job_id",
	],
	"BTU Task Log": [
		"task",
		"task_desc_short",
		"schedule",
		"success_fail",
		"date_time_started",
		"execution_time",
		"stdout",
		"result_message",
		"task_component",
	],
	"BTU Configuration": ["cron_time_zone", "path_to_btu_scheduler_uds"],
	"BTU Email Recipient": [
		"email_address",
		"email_on_start",
		"email_on_success",
		"email_on_error",
		"email_on_timeout",
	],
}


def test_doctype_and_field_names_are_the_original_ones():
	doctypes = {}
	for path in DOCTYPE_DIR.glob("*/*.json"):
		data = json.loads(path.read_text())
		if data.get("doctype") == "DocType":
			doctypes[data["name"]] = {f["fieldname"] for f in data.get("fields", []) if f.get("fieldname")}
	assert set(ORIGINAL_FIELDS) | {"BTU Queue"} <= set(doctypes)
	for doctype, fields in ORIGINAL_FIELDS.items():
		missing = sorted(set(fields) - doctypes[doctype])
		assert not missing, f"{doctype} lost original fields {missing}"
	assert (
		"cron_timezone" in doctypes["BTU Task Schedule"]
	)  # the one new schedule field (see docs/upgrading.md)


def test_every_upgrade_patch_is_documented():
	"""docs/upgrading.md's table of patches names exactly the patches of btu/patches.txt."""
	app = DOCTYPE_DIR.parent.parent
	listed = [
		line.strip().rsplit(".", 1)[-1]
		for line in (app / "patches.txt").read_text().splitlines()
		if line.strip().startswith("btu.patches.")
	]
	doc = (app.parent / "docs" / "upgrading.md").read_text()
	table = {m for m in re.findall(r"^\| `([a-z_]+)` \|", doc, re.MULTILINE)}
	assert table == set(listed), (sorted(table), listed)
	assert "time_zone_string` only formatted" in doc or "only formatted the next run times" in doc
