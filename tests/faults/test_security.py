"""Security checks: socket file mode and group, no unpickling or evaluation of socket/SQL data,
parameterised SQL, Redis ACL credentials honoured and never shown, insecure config files flagged."""

from __future__ import annotations

import grp
import json
import os
import pickle
import re
import stat
import time
from pathlib import Path

import pytest

from btu.contracts.redis_keys import KEYS

from ..services import REPO
from .harness import RECORD, SITE, STATS, Daemon, FaultRedis, queued_runs, run_cli, wait_for, write_config

pytestmark = pytest.mark.faults
NEXT_RUNS = KEYS.next_runs(SITE)
PASSWORD = "Zq7-very-secret-pa55word"


def _other_group() -> str:
	"""A group other than our own, to show socket_group is applied (as root any group works)."""
	mine = grp.getgrgid(os.getgid()).gr_name
	if os.geteuid() == 0:
		for name in ("daemon", "adm", "users", "nogroup"):
			try:
				grp.getgrnam(name)
				return name
			except KeyError:
				continue
	return mine


def test_socket_file_mode_0660_and_configurable_group(bench):
	group = _other_group()
	daemon = bench.daemon("d", socket_group=group)
	info = os.stat(daemon.socket_path)
	assert stat.S_ISSOCK(info.st_mode)
	assert stat.S_IMODE(info.st_mode) == 0o660
	assert info.st_gid == grp.getgrnam(group).gr_gid
	# A group that does not exist stops start-up with a clear line.
	config, _socket = write_config(
		bench.workdir, "nogroup", bench.redis_url, bench.site_db, socket_group="no-such-group-btu"
	)
	result = run_cli("run", "--config", config, timeout=30)
	assert result.returncode != 0 and "socket_group 'no-such-group-btu'" in result.stderr, result.stderr


def test_daemon_code_never_unpickles_or_evaluates():
	"""Static check of the daemon and of the argument parser it uses."""
	pattern = re.compile(r"\b(pickle\.loads?|cPickle|marshal\.loads?|eval|exec|yaml\.load|shelve|dill)\s*\(")
	sources = sorted((REPO / "btu" / "scheduler_daemon").glob("*.py")) + [
		REPO / "btu" / "contracts" / "arguments.py"
	]
	offenders = [
		f"{path.name}:{n}: {line.strip()}"
		for path in sources
		for n, line in enumerate(path.read_text().splitlines(), 1)
		if pattern.search(line) and not line.strip().startswith("#")
	]
	assert not offenders, offenders


def test_pickle_and_eval_payloads_are_data_or_refused(bench):
	canary = Path(bench.workdir) / "canary"
	out = Path(bench.workdir) / "runs.txt"
	evil_pickle = pickle.dumps(os.system)  # would call os.system if unpickled
	payloads = {
		"pickle_proto0": f"cos\nsystem\n(S'touch {canary}'\ntR.",
		"pickle_bytes_latin1": evil_pickle.decode("latin-1"),
		"eval_import": f"__import__('os').system('touch {canary}')",
		"reduce_dict": "{'__reduce__': (os.system, ('touch " + str(canary) + "',))}",
		"template": "{{ __import__('os').system('touch x') }}",
	}
	db = bench.site_db
	db.add_task("BTU-DATA", RECORD, {"path": str(out)})
	names = {}
	for i, (kind, payload) in enumerate(payloads.items()):
		name = f"TS-EVIL-{i}"
		db.add_schedule(name, "BTU-DATA", "*/2 * * * * *", overrides={"label": payload})
		names[name] = payload
	# Raw pickle bytes (not JSON) in the arguments column: refused as invalid JSON, with a log line.
	db.add_task("BTU-RAWPICKLE", RECORD, evil_pickle.decode("latin-1"))
	db.add_schedule("TS-RAWPICKLE", "BTU-RAWPICKLE", "* * * * * *")
	bench.worker()
	daemon = bench.daemon("d")
	# A pickle and an eval payload as socket request content: just a (unknown) schedule name.
	for content in (payloads["eval_import"], "cos\\nsystem", payloads["reduce_dict"][:140]):
		reply = daemon.request("create_task_schedule", content.replace("\n", " ")[:140], SITE)
		assert reply.ok  # queued as a name; the daemon reads it as data and finds no such schedule
	STATS.add(bench.test_name, bad_inputs_sent=len(payloads) + 4)
	wait_for(lambda: _labels(out) >= set(names.values()), 30, what="every payload to be run as plain data")
	assert _labels(out) >= set(names.values())
	assert not canary.exists(), "a payload was executed"
	invalid = {e["schedule"]: e["error"] for e in daemon.events("schedule_invalid")}
	assert "TS-RAWPICKLE" in invalid and "invalid JSON" in invalid["TS-RAWPICKLE"], invalid


def _labels(path: Path) -> set[str]:
	"""record_run writes '<time> <label>\\n'; labels may hold newlines: split on the time stamps."""
	text = path.read_text() if path.exists() else ""
	parts = re.split(r"(?:^|\n)\d+\.\d{3} ", text)
	return {p.rstrip("\n") for p in parts if p}


def test_sql_metacharacters_in_names_are_plain_data(bench):
	db = bench.site_db
	task = "BTU-'q\"\\;%s"
	name = 'TS-\'); DROP TABLE `tabBTU Task`; -- "x" \\ %s %% ?'
	db.add_task(task, RECORD, {"path": "/dev/null"})
	db.add_schedule(name, task, "* * * * * *")
	daemon = bench.daemon("d")
	client = bench.client()
	wait_for(lambda: client.zscore(NEXT_RUNS, name) is not None, 20, what="the oddly named schedule in Redis")
	wait_for(lambda: len(queued_runs(client, [name])) >= 2, 10, what="its runs")
	assert daemon.request("create_task_schedule", name, SITE).ok
	assert daemon.request("cancel_task_schedule", name + "' OR '1'='1", SITE).ok
	time.sleep(1.5)
	assert client.zscore(NEXT_RUNS, name) is not None  # the injection-looking cancel removed nothing
	conn = db.connect()
	with conn.cursor() as cur:
		cur.execute("SELECT COUNT(*) FROM `tabBTU Task`")
		assert cur.fetchone()[0] == 1
	conn.close()


def test_redis_acl_credentials_are_used_and_never_shown(fault_dir, fault_site):
	server = FaultRedis(
		fault_dir,
		["--user", "default", "off", "--user", "btu", "on", f">{PASSWORD}", "~*", "&*", "+@all"],
		username="btu",
		password=PASSWORD,
	).start()
	daemons = []
	try:
		fault_site.add_task("BTU-ACL", RECORD, {"path": "/dev/null"})
		fault_site.add_schedule("TS-ACL", "BTU-ACL", "* * * * * *")
		config, socket_path = write_config(
			fault_dir,
			"acl",
			server.url(0),
			fault_site,
			redis_username="btu",
			redis_password=PASSWORD,
			log_level="DEBUG",
		)
		daemon = Daemon(fault_dir, config, socket_path, "acl")
		daemons.append(daemon)
		daemon.start()
		client = server.client()
		wait_for(
			lambda: len(queued_runs(client, ["TS-ACL"])) >= 2, 20, what="runs enqueued through the ACL user"
		)
		checked = run_cli("check-config", "--config", config)
		assert checked.returncode == 0, checked.stdout + checked.stderr
		assert "redis: ok" in checked.stdout
		# Wrong password, and the password inside the URL: refused / redacted, never printed.
		wrong, _ = write_config(
			fault_dir,
			"wrong",
			server.url(0),
			fault_site,
			redis_username="btu",
			redis_password=PASSWORD + "-wrong",
		)
		refused = run_cli("check-config", "--config", wrong)
		assert refused.returncode != 0 and "redis: UNREACHABLE" in refused.stderr
		in_url, _ = write_config(
			fault_dir, "inurl", f"redis://btu:{PASSWORD}@127.0.0.1:{server.port}/0", fault_site
		)
		via_url = run_cli("check-config", "--config", in_url)
		assert via_url.returncode == 0 and "redis: ok" in via_url.stdout, via_url.stdout + via_url.stderr
		status = json.dumps(daemon.request("status").data)
		daemon.stop()
		outputs = {
			"daemon log": daemon.log(),
			"check-config": checked.stdout + checked.stderr,
			"check-config (wrong password)": refused.stdout + refused.stderr,
			"check-config (password in URL)": via_url.stdout + via_url.stderr,
			"status reply": status,
		}
		for where, text in outputs.items():
			assert PASSWORD not in text, f"the Redis password appears in the {where}"
		# A client without the credentials is refused: the ACL really is in force.
		import redis

		with pytest.raises(redis.AuthenticationError):
			redis.Redis(port=server.port, username="btu", password="nope").ping()
	finally:
		for daemon in daemons:
			daemon.stop()
		server.stop()


def test_check_config_warns_when_a_file_holding_a_secret_is_readable_by_others(bench):
	config, _ = bench.config("perm")
	# A password in the Redis URL: the file holds a secret.
	text = Path(config).read_text()
	url = re.search(r'redis_url = "([^"]+)"', text).group(1)
	Path(config).write_text(text.replace(url, url.replace("redis://", "redis://:s3cret@")))
	os.chmod(config, 0o644)
	loose = run_cli("check-config", "--config", config)
	assert "warning:" in loose.stderr and "readable by every user" in loose.stderr and config in loose.stderr
	assert "holds secrets (redis_url)" in loose.stderr
	assert "s3cret" not in loose.stdout + loose.stderr
	os.chmod(config, 0o600)
	tight = run_cli("check-config", "--config", config)
	assert "readable by every user" not in tight.stderr


def test_check_config_does_not_warn_about_a_readable_file_without_secrets(bench):
	"""A world-readable file with no password, token or key in it (like a bench's usual
	common_site_config.json) is no risk: no warning."""
	config, _ = bench.config("nosecret")
	assert "password" not in Path(config).read_text() or 'db_password = ""' in Path(config).read_text()
	os.chmod(config, 0o644)
	result = run_cli("check-config", "--config", config)
	assert "readable by every user" not in result.stderr, result.stderr
	assert result.returncode == 0, result.stderr
