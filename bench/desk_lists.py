"""Desk lists at scale (issue 23 item 1): BTU's lists beside Frappe's own, on a real v15 bench.

    .venv/bin/python bench/desk_lists.py                          # 10,000 schedules, 1,000,000 logs
    .venv/bin/python bench/desk_lists.py --schedules 200 --logs 20000 --runs 5   # a quick look
    .venv/bin/python bench/desk_lists.py --keep                   # leave the site for a look in Desk

Run as root (bench commands run as the bench's user with ``su -``) or as that user. Options:
``--bench`` (default ``$BTU_BENCH`` or /home/frappe/frappe-bench), ``--db-root-user`` /
``--db-root-password`` (default ``benchadmin``/``benchadmin``), ``--extra-index`` (add an index
with SQL on the benchmark's own site before measuring, e.g. ``"BTU Task Log:success_fail,modified"``).

What it does:

1. makes its OWN site (``btulists<random>.localhost``: ``bench new-site --install-app btu``, the
   setup wizard completed, zone America/New_York, ``pause_scheduler`` set so neither Frappe's
   scheduler nor the BTU daemon runs anything of it);
2. fills it with SQL bulk inserts (MariaDB's sequence engine, no per-document inserts): N BTU Task
   Schedules (one submitted BTU Task for every 10; 40 % Cron Style, 5 % one-shots; next run, last
   run, last status and last log filled when the site's code has them), M BTU Task Logs spread over
   the schedules and the last 90 days (Success 90 %, Failed 6 %, Timeout 2 %, Skipped 1.5 %,
   In-Progress 0.5 %; durations log-uniform from 20 ms to 2 min, 600 s for a Timeout; stdout of
   100 B (65 %), 800 B (30 %) or 5 KB (5 %), a 1 KB traceback for Failed and Timeout); and the
   same M rows in Frappe's ``tabScheduled Job Log`` (Complete 94 %, Failed 6 %, the same payload
   sizes in ``details``; 10-character names in no order, as Frappe's hash names) spread over N
   Scheduled Job Types (all ``stopped``);
3. starts a web server of its own for the site (``bench --site <site> serve --port <free>``: the
   bench's own server answers every host name as its default site) and, logged in as
   Administrator, asks what Desk's list view asks when a list opens: ``frappe.desk.reportview.get``
   with the fields Desk's ListView computes (standard fields, ``in_list_view`` fields, title field,
   the ``add_fields`` of the doctype's ``*_list.js``, the sort field, the title of links to doctypes
   with ``show_title_field_in_link``), the doctype's ``sort_field``/``sort_order``, page length 20,
   ``with_comment_count``; and the count Desk shows (``frappe.db.count`` in the browser:
   ``frappe.desk.reportview.get_count`` with ``limit`` 1001, as ListView's ``count_upper_bound``),
   for the list opened (with the default ``filters`` of its ``*_list.js``, as Desk applies them)
   and with typical filters and a sort. Every request is timed round trip (first, median,
   p95 of ``--runs``), the lists taking turns; the same SQL is also timed alone on the database;
4. prints the EXPLAIN of the SQL Frappe generates for each case and the indexes of each table;
5. drops its site (``bench drop-site --no-backup``) unless ``--keep``, and stops the web server it
   started (by its pid) in every case.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import random
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from http.cookiejar import CookieJar
from pathlib import Path
from zoneinfo import ZoneInfo

import pymysql

ZONE = "America/New_York"
TASK_FUNCTION = "btu.btu_core.sample_tasks.hello"
PAGE_LENGTH = 20  # Desk's ListView on a screen that is not "large"
COUNT_UPPER_BOUND = 1001  # ListView.count_upper_bound
CHUNK = 100_000

# Runs with the bench's own Python inside the site (frappe.init/connect): the list arguments Desk's
# ListView computes (frappe/public/js/frappe/list/{base_list,list_view}.js, v15) and the SQL that
# frappe.desk.reportview.get / get_count build from them.
HELPER = r"""
import json, os, re, sys
spec = json.load(open(sys.argv[1]))
import frappe
frappe.init(site=spec["site"], sites_path=".")
frappe.connect()
frappe.set_user("Administrator")
from frappe.desk import reportview

STD = ["name", "owner", "creation", "modified", "modified_by", "_user_tags", "_comments", "_assign",
       "_liked_by", "docstatus", "idx"]
NO_VALUE = {"Section Break", "Column Break", "Tab Break", "HTML", "Table", "Table MultiSelect",
            "Button", "Image", "Fold", "Heading"}
link_title = set(frappe.get_all("DocType", {"show_title_field_in_link": 1}, pluck="name"))
link_title |= set(frappe.get_all("Property Setter", {"property": "show_title_field_in_link", "value": "1"},
                                 pluck="doc_type"))

def list_js(meta):
    path = os.path.join(frappe.get_module_path(meta.module), "doctype", frappe.scrub(meta.name),
                        frappe.scrub(meta.name) + "_list.js")
    return open(path).read() if os.path.exists(path) else ""

def add_fields_of(meta):
    found = re.search(r"add_fields\s*:\s*\[([^\]]*)\]", list_js(meta))
    return re.findall(r"[\"']([^\"']+)[\"']", found.group(1)) if found else []

def default_filters_of(meta):
    # listview_settings.filters: applied when a list opens without saved filters
    found = re.search(r"\bfilters\s*:\s*(\[\s*\[.*?\]\s*\])", list_js(meta), re.S)
    return json.loads(found.group(1)) if found else []

def desk_fields(meta):
    dt = meta.name
    sort_by = meta.sort_field or "modified"
    in_list = [df.fieldname for df in meta.fields
               if (df.fieldtype not in NO_VALUE and df.in_list_view) or df.fieldname == "status"]
    wanted = (STD + in_list + [meta.title_field, meta.image_field] + add_fields_of(meta)
              + (["_seen"] if meta.track_seen else []) + [sort_by, "enabled", "disabled", "color"])
    fields, titles = [], {}
    for f in wanted:
        if not f or f in fields:
            continue
        df = meta.get_field(f)
        if not (f in STD or df or f == "_seen") or (df and df.is_virtual):
            continue
        fields.append(f)
        if df and df.fieldtype == "Link" and df.options in link_title:
            target = frappe.get_meta(df.options)
            if target.show_title_field_in_link and target.title_field:
                titles[f] = target.title_field
    columns = [f"`tab{dt}`.`{f}`" for f in fields]
    columns += [f"{f}.{t} as {f}_{t}" for f, t in titles.items()]
    order = (meta.sort_order or "desc")
    return columns, f"`tab{dt}`.`{sort_by}` {order}"

def sql_of(method, args):
    frappe.local.form_dict = frappe._dict(json.loads(json.dumps(args)))
    params = reportview.get_form_params()
    if method == "get":
        params.pop("with_comment_count", None)  # applied to the rows afterwards, not to the SQL
        return reportview.execute(**params, run=0)
    params.distinct = False
    params.limit = int(params.limit)
    params.order_by = None
    params.fields = [f"`tab{params.doctype}`.name"]
    inner = reportview.execute(**params, run=0)
    return f"select count(*) from ( {inner} ) p"

out = {"lists": {}, "cases": []}
for dt in spec["doctypes"]:
    meta = frappe.get_meta(dt)
    columns, order_by = desk_fields(meta)
    out["lists"][dt] = {"fields": columns, "order_by": order_by, "default_filters": default_filters_of(meta)}
for case in spec["cases"]:
    dt = case["doctype"]
    defaults = [d for d in out["lists"][dt]["default_filters"] if d[0] not in {f[0] for f in case["filters"]}]
    filters = [[dt, f, op, v] for f, op, v in defaults + case["filters"]]
    order_by = "`tab{}`.`{}` {}".format(dt, *case["sort"].split()) if case.get("sort") else out["lists"][dt]["order_by"]
    get_args = {"doctype": dt, "fields": out["lists"][dt]["fields"], "filters": filters, "order_by": order_by, "start": 0, "page_length": spec["page_length"],
                "view": "List", "group_by": None, "with_comment_count": 1}
    count_args = {"doctype": dt, "filters": filters, "fields": [], "distinct": False,
                  "limit": spec["count_upper_bound"]}
    out["cases"].append({**case, "get_args": get_args, "count_args": count_args,
                         "get_sql": sql_of("get", get_args), "count_sql": sql_of("count", count_args)})
frappe.destroy()
print("@@JSON@@" + json.dumps(out, default=str))
"""


def log(message: str) -> None:
	print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchCommands:
	def __init__(self, path: str, user: str) -> None:
		self.path, self.user = path, user

	def _args(self, script: str) -> list[str]:
		if pwd.getpwuid(os.getuid()).pw_name == self.user:
			return ["bash", "-lc", script]
		return ["su", "-", self.user, "-c", script]

	def run(self, command: str, timeout: float = 1800, cwd: str = "") -> str:
		script = (
			f"cd {shlex.quote(os.path.join(self.path, cwd))} && unset PYTHONDONTWRITEBYTECODE && {command}"
		)
		result = subprocess.run(self._args(script), capture_output=True, text=True, timeout=timeout)
		if result.returncode != 0:
			raise RuntimeError(
				f"`{command}` exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
			)
		return result.stdout

	def popen(self, command: str, log_path: str) -> subprocess.Popen:
		script = f"cd {shlex.quote(self.path)} && unset PYTHONDONTWRITEBYTECODE && exec {command}"
		handle = open(log_path, "ab")
		return subprocess.Popen(
			self._args(script), stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
		)


def stop(process: subprocess.Popen) -> None:
	"""SIGTERM the process group of a server this script started (its own session), then SIGKILL."""
	if process.poll() is not None:
		return
	try:
		os.killpg(process.pid, signal.SIGTERM)
		process.wait(20)
	except ProcessLookupError:
		return
	except subprocess.TimeoutExpired:
		os.killpg(process.pid, signal.SIGKILL)
		process.wait(10)


def free_port() -> int:
	with socket.socket() as probe:
		probe.bind(("127.0.0.1", 0))
		return probe.getsockname()[1]


class Http:
	"""Frappe's HTTP API as Administrator (session cookie), timed round trip."""

	def __init__(self, base_url: str, password: str) -> None:
		self.base_url = base_url
		self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
		self.call("login", {"usr": "Administrator", "pwd": password})

	def call(self, method: str, args: dict) -> tuple[object, float]:
		# Desk's frappe.call posts form fields, objects as JSON strings
		body = urllib.parse.urlencode(
			{k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in args.items() if v is not None}
		).encode()
		request = urllib.request.Request(
			f"{self.base_url}/api/method/{method}",
			data=body,
			headers={"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"},
		)
		started = time.perf_counter()
		try:
			with self.opener.open(request, timeout=300) as response:
				payload = response.read()
		except urllib.error.HTTPError as exc:
			raise RuntimeError(f"{method}: HTTP {exc.code}: {exc.read()[:1500]!r}") from None
		elapsed = time.perf_counter() - started
		return json.loads(payload).get("message"), elapsed


# --- filling the site ------------------------------------------------------------------------
def h(tag: str, modulo: int) -> str:
	"""A deterministic pseudo-random integer in [0, modulo) per row of the sequence."""
	return f"(CRC32(CONCAT('{tag}', seq)) % {modulo})"


def fill(db, n_schedules: int, n_logs: int, now: datetime) -> dict:
	n_tasks = max(1, n_schedules // 10)
	now_s = now.strftime("%Y-%m-%d %H:%M:%S")
	run = db.cursor().execute
	timings = {}

	started = time.monotonic()
	run(
		f"""INSERT INTO `tabBTU Task` (name, creation, modified, modified_by, owner, docstatus, idx,
		desc_short, task_group, function_string, desc_long, max_task_duration, arguments, last_runtime)
		SELECT CONCAT('BTU-', LPAD(seq, 5, '0')),
		  TIMESTAMP('{now_s}') - INTERVAL (400 + seq % 300) DAY, TIMESTAMP('{now_s}') - INTERVAL (100 + seq % 200) DAY,
		  'Administrator', 'Administrator', 1, 0,
		  CONCAT(ELT(1 + seq % 6, 'Sync orders', 'Nightly report', 'Clean cache', 'Import prices', 'Send digest', 'Check stock'), ' #', seq),
		  ELT(1 + seq % 4, 'Sales', 'Stock', 'Reports', 'Housekeeping'), '{TASK_FUNCTION}',
		  'A task of the Desk lists benchmark', 600, '{{}}', TIMESTAMP('{now_s}') - INTERVAL (seq % 3600) SECOND
		FROM seq_1_to_{n_tasks}"""
	)
	run(
		f"""INSERT INTO `tabBTU Task Schedule` (name, creation, modified, modified_by, owner, docstatus, idx,
		task, task_description, enabled, queue_name, overlap_policy, start_deadline, run_frequency, run_at,
		minute, hour, day_of_week, day_of_month, cron_string, cron_timezone, schedule_description, attempt)
		SELECT CONCAT('TS-', LPAD(seq, 6, '0')),
		  TIMESTAMP('{now_s}') - INTERVAL (30 + seq % 330) DAY, TIMESTAMP('{now_s}') - INTERVAL (seq % 30) DAY,
		  'Administrator', 'Administrator', 0, 0,
		  CONCAT('BTU-', LPAD(1 + seq % {n_tasks}, 5, '0')),
		  CONCAT(ELT(1 + (1 + seq % {n_tasks}) % 6, 'Sync orders', 'Nightly report', 'Clean cache', 'Import prices', 'Send digest', 'Check stock'), ' #', 1 + seq % {n_tasks}),
		  IF({h("e", 10)} = 0, 0, 1), NULL, 'Allow', 0,
		  ELT(1 + {h("f", 20)} DIV 1, 'Cron Style','Cron Style','Cron Style','Cron Style','Cron Style','Cron Style','Cron Style','Cron Style',
		      'Hourly','Hourly','Hourly','Hourly','Daily','Daily','Daily','Daily','Daily','Weekly','Weekly','Once'),
		  TIMESTAMP('{now_s}') + INTERVAL (seq % 90) DAY,
		  seq % 60, seq % 24, '', 0,
		  CONCAT(seq % 60, ' ', IF(seq % 3 = 0, '*', seq % 24), ' * * *'), '{ZONE}',
		  'A schedule of the Desk lists benchmark', 0
		FROM seq_1_to_{n_schedules}"""
	)
	cursor = db.cursor()
	cursor.execute("SHOW COLUMNS FROM `tabBTU Task Schedule`")
	columns = {row[0] for row in cursor.fetchall()}
	if {"next_run", "last_run", "last_status", "last_log"} <= columns:  # issue 23's run columns
		bucket = "(CRC32(CONCAT('u', name)) % 1000)"
		run(
			f"""UPDATE `tabBTU Task Schedule` SET
			  next_run = IF(run_frequency = 'Once' AND enabled = 0, NULL,
			                TIMESTAMP('{now_s}') + INTERVAL (CRC32(CONCAT('n', name)) % 86400) SECOND),
			  last_run = TIMESTAMP('{now_s}') - INTERVAL (CRC32(CONCAT('r', name)) % 86400) SECOND,
			  last_status = IF({bucket} < 900, 'Success', IF({bucket} < 960, 'Failed', IF({bucket} < 980, 'Timeout', 'Skipped'))),
			  last_log = CONCAT('BTLOG-', LPAD(1 + CRC32(CONCAT('g', name)) % {max(1, n_logs)}, 7, '0'))"""
		)
	db.commit()
	timings["tasks and schedules"] = time.monotonic() - started

	# Task Logs: one per run, time-ordered by name; each run is of a schedule and of its task.
	span = 90 * 86400
	payload = (
		f"REPEAT('INFO step done: rows=1234 elapsed=0.012s some output\\n', "
		f"IF({h('o', 100)} < 65, 2, IF({h('o', 100)} < 95, 15, 100)))"
	)
	traceback = (
		"CONCAT('Traceback (most recent call last):\\n', "
		"REPEAT('  File \"/home/frappe/frappe-bench/apps/app/app/module.py\", line 42, in run\\n    do_it()\\n', 12), "
		"'RuntimeError: the remote API answered 503')"
	)
	started = time.monotonic()
	for low in range(1, n_logs + 1, CHUNK):
		high = min(n_logs, low + CHUNK - 1)
		schedule = f"(1 + {h('s', n_schedules)})"
		status = (
			f"ELT(1 + (CASE WHEN {h('t', 1000)} < 900 THEN 0 WHEN {h('t', 1000)} < 960 THEN 1 "
			f"WHEN {h('t', 1000)} < 980 THEN 2 WHEN {h('t', 1000)} < 995 THEN 3 ELSE 4 END), "
			"'Success', 'Failed', 'Timeout', 'Skipped', 'In-Progress')"
		)
		run(
			f"""INSERT INTO `tabBTU Task Log` (name, creation, modified, modified_by, owner, docstatus, idx,
			task, task_desc_short, schedule, task_component, attempt, success_fail, date_time_started,
			execution_time, fire_time, start_delay, job_id, stdout, result_message, arguments)
			SELECT name, started, started + INTERVAL ROUND(duration * 1000000) MICROSECOND, 'Administrator',
			  'Administrator', 0, 0, task, task_desc, sched, '{TASK_FUNCTION}', 1, status, started,
			  IF(status = 'In-Progress', 0, duration), started - INTERVAL ROUND(delay * 1000000) MICROSECOND, delay,
			  CONCAT('btu:', sched, ':', UNIX_TIMESTAMP(started)), {payload},
			  IF(status IN ('Failed', 'Timeout'), {traceback}, 'Returned None'), '{{}}'
			FROM (
			  SELECT seq, CONCAT('BTLOG-', LPAD(seq, 7, '0')) AS name,
			    TIMESTAMP('{now_s}') - INTERVAL ROUND(({n_logs} - seq) * {span} / {n_logs} * 1000000 + {h("j", 1000000)}) MICROSECOND AS started,
			    CONCAT('TS-', LPAD({schedule}, 6, '0')) AS sched,
			    CONCAT('BTU-', LPAD(1 + {schedule} % {n_tasks}, 5, '0')) AS task,
			    CONCAT(ELT(1 + (1 + {schedule} % {n_tasks}) % 6, 'Sync orders', 'Nightly report', 'Clean cache', 'Import prices', 'Send digest', 'Check stock'), ' #', 1 + {schedule} % {n_tasks}) AS task_desc,
			    {status} AS status,
			    IF({h("t", 1000)} BETWEEN 960 AND 979, 600, ROUND(0.02 * POW(1.0000087, {h("d", 1000000)}), 3)) AS duration,
			    0.002 + {h("l", 500)} / 1000 AS delay
			  FROM seq_{low}_to_{high}
			) generated"""
		)
		db.commit()
		log(f"  Task Logs: {high:,} of {n_logs:,}")
	timings["BTU Task Log rows"] = time.monotonic() - started

	started = time.monotonic()
	run(
		f"""INSERT INTO `tabScheduled Job Type` (name, creation, modified, modified_by, owner, docstatus, idx,
		method, stopped, create_log, frequency, cron_format, last_execution)
		SELECT CONCAT('desk_lists_bench.job_', LPAD(seq, 6, '0')),
		  TIMESTAMP('{now_s}') - INTERVAL (30 + seq % 330) DAY, TIMESTAMP('{now_s}') - INTERVAL (seq % 30) DAY,
		  'Administrator', 'Administrator', 0, 0,
		  CONCAT('btu_bench.desk_lists_bench.job_', LPAD(seq, 6, '0')), 1, 1,
		  ELT(1 + {h("f", 5)}, 'Cron', 'Cron', 'Hourly', 'Daily', 'Weekly'),
		  IF({h("f", 5)} < 2, CONCAT(seq % 60, ' * * * *'), NULL), TIMESTAMP('{now_s}') - INTERVAL (seq % 3600) SECOND
		FROM seq_1_to_{n_schedules}"""
	)
	for low in range(1, n_logs + 1, CHUNK):
		high = min(n_logs, low + CHUNK - 1)
		run(
			f"""INSERT INTO `tabScheduled Job Log` (name, creation, modified, modified_by, owner, docstatus, idx,
			status, scheduled_job_type, details)
			SELECT name, started, started + INTERVAL ROUND(duration * 1000000) MICROSECOND, 'Administrator',
			  'Administrator', 0, 0, status, job, IF(status = 'Failed', CONCAT({payload}, {traceback}), {payload})
			FROM (
			  SELECT seq, LOWER(LPAD(HEX((seq * 1099511627 + 12345) % 1099511627776), 10, '0')) AS name,
			    TIMESTAMP('{now_s}') - INTERVAL ROUND(({n_logs} - seq) * {span} / {n_logs} * 1000000 + {h("j", 1000000)}) MICROSECOND AS started,
			    CONCAT('desk_lists_bench.job_', LPAD(1 + {h("s", n_schedules)}, 6, '0')) AS job,
			    IF({h("t", 1000)} < 940, 'Complete', 'Failed') AS status,
			    ROUND(0.02 * POW(1.0000087, {h("d", 1000000)}), 3) AS duration
			  FROM seq_{low}_to_{high}
			) generated"""
		)
		db.commit()
		log(f"  Scheduled Job Logs: {high:,} of {n_logs:,}")
	timings["Scheduled Job Log rows"] = time.monotonic() - started

	for prefix, current in (("BTU-", n_tasks), ("TS-", n_schedules), ("BTLOG-", n_logs)):
		run(
			"INSERT INTO tabSeries (name, current) VALUES (%s, %s) ON DUPLICATE KEY UPDATE current = %s",
			(prefix, current, current),
		)
	for table in ("BTU Task", "BTU Task Schedule", "BTU Task Log", "Scheduled Job Type", "Scheduled Job Log"):
		run(f"ANALYZE TABLE `tab{table}`")
	db.commit()
	return timings


# --- measuring -------------------------------------------------------------------------------
def cases() -> list[dict]:
	"""What is asked of each list: opened (its default filters, as Desk applies them), and typical
	filters and sorts. The peers take turns with BTU's lists."""
	task, schedule, job = "BTU-00001", "TS-000001", "desk_lists_bench.job_000001"

	def case(group: str, doctype: str, title: str, filters=(), sort: str | None = None) -> dict:
		return {
			"group": group,
			"list": doctype,
			"doctype": doctype,
			"case": title,
			"filters": list(filters),
			"sort": sort,
		}

	return [
		case("logs", "BTU Task Log", "opened"),
		case("logs", "Scheduled Job Log", "opened"),
		case("logs", "BTU Task Log", "status = Failed", [["success_fail", "=", "Failed"]]),
		case("logs", "Scheduled Job Log", "status = Failed", [["status", "=", "Failed"]]),
		case("logs", "BTU Task Log", f"schedule = {schedule}", [["schedule", "=", schedule]]),
		case("logs", "Scheduled Job Log", f"job type = {job}", [["scheduled_job_type", "=", job]]),
		case("logs", "BTU Task Log", f"task = {task}", [["task", "=", task]]),
		case(
			"logs",
			"BTU Task Log",
			f"task = {task}, status = Failed",
			[["task", "=", task], ["success_fail", "=", "Failed"]],
		),
		case("schedules", "BTU Task Schedule", "opened"),
		case("schedules", "Scheduled Job Type", "opened"),
		case("schedules", "BTU Task Schedule", "sorted by next run", sort="next_run asc"),
		case(
			"schedules",
			"BTU Task Schedule",
			"one-shots (Show > One-shot runs)",
			[["run_frequency", "=", "Once"]],
		),
		case("schedules", "BTU Task Schedule", f"task = {task}", [["task", "=", task]]),
		case("schedules", "Scheduled Job Type", "frequency = Daily", [["frequency", "=", "Daily"]]),
	]


def percentile(values: list[float], fraction: float) -> float:
	ordered = sorted(values)
	return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def ms(value: float) -> str:
	return f"{value * 1000:,.1f}"


def explain(db, sql: str) -> list[dict]:
	cursor = db.cursor(pymysql.cursors.DictCursor)
	cursor.execute("EXPLAIN " + sql)
	return cursor.fetchall()


def sql_time(db, sql: str, runs: int) -> float:
	cursor = db.cursor()
	times = []
	for _ in range(runs):
		started = time.perf_counter()
		cursor.execute(sql)
		cursor.fetchall()
		times.append(time.perf_counter() - started)
	return statistics.median(times)


def indexes(db, table: str) -> dict[str, list[str]]:
	cursor = db.cursor(pymysql.cursors.DictCursor)
	cursor.execute(f"SHOW INDEX FROM `tab{table}`")
	found: dict[str, list[str]] = {}
	for row in cursor.fetchall():
		found.setdefault(row["Key_name"], []).append(row["Column_name"])
	return found


def search_index_fields(repo_doctype_json: Path) -> list[str]:
	meta = json.loads(repo_doctype_json.read_text())
	return [f["fieldname"] for f in meta["fields"] if f.get("search_index")]


def main() -> int:
	parser = argparse.ArgumentParser(
		description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
	)
	parser.add_argument("--bench", default=os.environ.get("BTU_BENCH", "/home/frappe/frappe-bench"))
	parser.add_argument("--bench-user", default=os.environ.get("BTU_BENCH_USER"))
	parser.add_argument("--schedules", type=int, default=10_000)
	parser.add_argument("--logs", type=int, default=1_000_000)
	parser.add_argument("--runs", type=int, default=20, help="timed repetitions of each request")
	parser.add_argument("--db-root-user", default="benchadmin")
	parser.add_argument("--db-root-password", default="benchadmin")
	parser.add_argument("--keep", action="store_true", help="leave the site (drop it yourself later)")
	parser.add_argument("--site", help="use this site made by an earlier --keep run: no new site, no fill")
	parser.add_argument(
		"--extra-index",
		action="append",
		default=[],
		help='"Doctype:col1,col2": add this index with SQL on the benchmark site before measuring',
	)
	parser.add_argument("--json", help="write the raw figures here")
	options = parser.parse_args()

	bench_path = os.path.realpath(options.bench)
	user = options.bench_user or pwd.getpwuid(os.stat(bench_path).st_uid).pw_name
	bench = BenchCommands(bench_path, user)
	work = tempfile.mkdtemp(prefix="btu-desk-lists-", dir="/tmp")
	os.chmod(work, 0o755)
	made_site = options.site is None
	site = options.site or f"btulists{random.randrange(16**6):06x}.localhost"
	server = None
	drop = made_site and not options.keep
	figures: dict = {"site": site, "schedules": options.schedules, "logs": options.logs, "runs": options.runs}
	try:
		if made_site:
			log(f"making the site {site} (bench new-site --install-app btu)")
			started = time.monotonic()
			bench.run(
				"bench new-site "
				+ shlex.join(
					[
						site,
						"--db-root-username",
						options.db_root_user,
						"--db-root-password",
						options.db_root_password,
						"--admin-password",
						"admin",
						"--install-app",
						"btu",
					]
				)
			)
			bench.run(f"bench --site {shlex.quote(site)} set-config pause_scheduler 1")
			wizard = {
				"args": {
					"language": "English",
					"country": "United States",
					"timezone": ZONE,
					"currency": "USD",
					"full_name": "Administrator",
					"email": "admin@example.com",
					"password": "admin",
				}
			}
			bench.run(
				f"bench --site {shlex.quote(site)} execute frappe.desk.page.setup_wizard.setup_wizard.setup_complete "
				f"--kwargs {shlex.quote(json.dumps(wizard))}"
			)
			figures["site_seconds"] = time.monotonic() - started
			log(f"site ready in {figures['site_seconds']:.0f} s")
		config = json.loads(Path(bench_path, "sites", site, "site_config.json").read_text())
		db = pymysql.connect(
			host="127.0.0.1",
			user=options.db_root_user,
			password=options.db_root_password,
			database=config["db_name"],
			autocommit=False,
			charset="utf8mb4",
		)
		if made_site:
			log(
				f"filling: {options.schedules:,} schedules, {options.logs:,} Task Logs and as many Scheduled Job Logs"
			)
			figures["fill_seconds"] = fill(
				db, options.schedules, options.logs, datetime.now(ZoneInfo(ZONE)).replace(tzinfo=None)
			)
			log("filled: " + ", ".join(f"{k} {v:.0f} s" for k, v in figures["fill_seconds"].items()))
		for spec in options.extra_index:
			doctype, columns = spec.split(":", 1)
			cols = [c.strip() for c in columns.split(",")]
			name = "_".join(cols) + "_index"
			if name not in indexes(db, doctype):
				log(f"adding index {name} on tab{doctype} with SQL (this benchmark site only)")
				db.cursor().execute(
					f"ALTER TABLE `tab{doctype}` ADD INDEX `{name}` ({', '.join(f'`{c}`' for c in cols)})"
				)
				db.commit()
		figures["extra_index"] = options.extra_index

		counts = {}
		cursor = db.cursor()
		for table in (
			"BTU Task",
			"BTU Task Schedule",
			"BTU Task Log",
			"Scheduled Job Type",
			"Scheduled Job Log",
		):
			cursor.execute(f"SELECT COUNT(*) FROM `tab{table}`")
			counts[table] = cursor.fetchone()[0]
		db.commit()
		figures["rows"] = counts

		# The list arguments and SQL, from the site itself.
		the_cases = cases()
		spec_path = Path(work, "spec.json")
		spec_path.write_text(
			json.dumps(
				{
					"site": site,
					"page_length": PAGE_LENGTH,
					"count_upper_bound": COUNT_UPPER_BOUND,
					"doctypes": sorted({c["doctype"] for c in the_cases}),
					"cases": the_cases,
				}
			)
		)
		helper_path = Path(work, "helper.py")
		helper_path.write_text(HELPER)
		for path in (spec_path, helper_path):
			os.chmod(path, 0o644)
		out = bench.run(
			f"../env/bin/python {shlex.quote(str(helper_path))} {shlex.quote(str(spec_path))}", cwd="sites"
		)
		generated = json.loads(out.split("@@JSON@@", 1)[1])
		the_cases = generated["cases"]
		figures["lists"] = generated["lists"]

		port = free_port()
		log(f"starting `bench --site {site} serve --port {port}`")
		server = bench.popen(
			f"bench --site {shlex.quote(site)} serve --port {port} --noreload", os.path.join(work, "web.log")
		)
		base_url = f"http://127.0.0.1:{port}"
		deadline = time.monotonic() + 120
		while True:
			try:
				with urllib.request.urlopen(base_url + "/api/method/ping", timeout=3):
					break
			except OSError:
				if time.monotonic() > deadline or server.poll() is not None:
					raise RuntimeError(
						"the web server did not answer:\n" + Path(work, "web.log").read_text()[-3000:]
					)
				time.sleep(1)
		http = Http(base_url, "admin")
		answered, _ = http.call(
			"frappe.desk.reportview.get_count", {"doctype": "BTU Task Log", "filters": []}
		)
		if answered != counts["BTU Task Log"]:
			raise RuntimeError(f"the web server answers as another site ({answered} Task Logs)")

		# Warm-up (recorded as "first"), then the lists take turns, run after run.
		for case in the_cases:
			case["get_times"], case["count_times"] = [], []
		for run in range(options.runs + 1):
			for case in the_cases:
				rows, get_time = http.call("frappe.desk.reportview.get", case["get_args"])
				count, count_time = http.call("frappe.desk.reportview.get_count", case["count_args"])
				case["rows"] = len(rows.get("values", [])) if isinstance(rows, dict) else len(rows or [])
				case["count"] = count
				if run == 0:
					case["get_first"], case["count_first"] = get_time, count_time
				else:
					case["get_times"].append(get_time)
					case["count_times"].append(count_time)
			if run % 5 == 0:
				log(f"  run {run} of {options.runs}")
		for case in the_cases:
			case["get_sql_ms"] = sql_time(db, case["get_sql"], 5) * 1000
			case["count_sql_ms"] = sql_time(db, case["count_sql"], 5) * 1000
			case["get_explain"] = explain(db, case["get_sql"])
			case["count_explain"] = explain(db, case["count_sql"])
		table_indexes = {
			t: indexes(db, t)
			for t in ("BTU Task Log", "BTU Task Schedule", "Scheduled Job Log", "Scheduled Job Type")
		}
		db.close()
		figures["cases"] = the_cases
		figures["indexes"] = table_indexes
		report(figures, Path(__file__).resolve().parent.parent)
		if options.json:
			Path(options.json).write_text(json.dumps(figures, indent=1, default=str))
	finally:
		if server is not None:
			stop(server)
			log(f"web server (pid {server.pid}) stopped")
		if drop:
			log(f"dropping {site}")
			try:
				bench.run(
					"bench drop-site "
					+ shlex.join(
						[
							site,
							"--db-root-username",
							options.db_root_user,
							"--db-root-password",
							options.db_root_password,
							"--force",
							"--no-backup",
						]
					)
				)
				# drop-site moves the site's folder to archived/sites even with --no-backup: this one is ours
				bench.run(f"rm -rf {shlex.quote(os.path.join('archived', 'sites', site))}")
				log(f"{site} dropped")
			except Exception as exc:  # noqa: BLE001 - say so, and let the caller drop it
				log(f"could not drop {site}: {exc}")
		elif made_site:
			log(f"kept {site} (--keep): drop it with bench drop-site {site} --no-backup --force")
	return 0


def report(figures: dict, repo: Path) -> None:
	rows = figures["rows"]
	print(
		f"\nDesk lists on a real bench: {rows['BTU Task Schedule']:,} BTU Task Schedules / {rows['Scheduled Job Type']:,} "
		f"Scheduled Job Types, {rows['BTU Task Log']:,} BTU Task Logs / {rows['Scheduled Job Log']:,} Scheduled Job Logs; "
		f"ms round trip over HTTP as Administrator (`bench serve`), first / median / p95 of {figures['runs']} runs; "
		"SQL: the query alone on the database, median"
		+ (f"; extra indexes: {', '.join(figures['extra_index'])}" if figures["extra_index"] else "")
		+ "\n"
	)
	print(
		"| list | case | rows shown / count | reportview.get first / median / p95 | SQL | get_count first / median / p95 | SQL |"
	)
	print("|---|---|--:|--:|--:|--:|--:|")
	for case in figures["cases"]:
		count = case["count"]
		count_text = f"{count - 1:,}+" if count == COUNT_UPPER_BOUND else f"{count:,}"
		print(
			f"| {case['list']} | {case['case']} | {case['rows']} / {count_text} | "
			f"{ms(case['get_first'])} / **{ms(statistics.median(case['get_times']))}** / {ms(percentile(case['get_times'], 0.95))} | "
			f"{case['get_sql_ms']:,.1f} | "
			f"{ms(case['count_first'])} / **{ms(statistics.median(case['count_times']))}** / {ms(percentile(case['count_times'], 0.95))} | "
			f"{case['count_sql_ms']:,.1f} |"
		)
	print("\nEXPLAIN (the list's rows; the count):")
	for case in figures["cases"]:
		for what in ("get", "count"):
			plan = "; ".join(
				f"{row.get('table')}: {row.get('type')} key={row.get('key')} rows={row.get('rows')} {row.get('Extra') or ''}".strip()
				for row in case[f"{what}_explain"]
			)
			print(f"- {case['list']}, {case['case']}, {what}: {plan}")
	print("\nIndexes:")
	for table, found in figures["indexes"].items():
		print(f"- {table}: " + ", ".join(f"{k}({', '.join(v)})" for k, v in found.items()))
	doctype_json = repo / "btu/btu_core/doctype/btu_task_log/btu_task_log.json"
	if doctype_json.exists():
		print(
			f"- search_index fields of BTU Task Log in {doctype_json.relative_to(repo)}: {', '.join(search_index_fields(doctype_json))}"
		)
	print("\nFields Desk asks for:")
	for doctype, spec in figures["lists"].items():
		print(f"- {doctype}: order by {spec['order_by']}; {', '.join(spec['fields'])}")


if __name__ == "__main__":
	sys.exit(main())
