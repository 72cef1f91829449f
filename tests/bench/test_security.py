"""What a site's System Manager can make BTU do, and what hostile text does in Desk (docs/security.md).

On the real bench: function paths that escape to a shell or SQL are refused over REST; a task whose
description, group, output and result hold HTML and script is shown literally in every form, list,
report and page, with no script run and a clean console; state-changing methods refuse GET; a
Website User and a System User without BTU roles get 403, counts included. Every record made is
deleted (the users too, with the traces Frappe keeps of them)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.cookiejar import CookieJar

import pytest

from .harness import Api

TOKEN = uuid.uuid4().hex[:6]
# Each sets window.__xss when it runs as markup; as text it shows as typed.
HOSTILE = f"<img src=x onerror=window.__xss=1>{TOKEN}<script>window.__xss=2</script></textarea><b>bold</b>"
HOSTILE_GROUP = "<svg onload=window.__xss=3>grp"
TEMPLATE = "{{ frappe.db.sql('select 1') }}"
VALIDATION_ERRORS = (r"417", r"EXPECTATION FAILED", r"ValidationError", r"Traceback", r"403", r"FORBIDDEN")

pytestmark = pytest.mark.usefixtures("no_console_errors")
MADE: dict[str, str] = {}


def refused(api: Api, method: str, path: str, data: dict | None = None) -> str:
	"""The body of a refused request (it must be refused)."""
	with pytest.raises(AssertionError) as info:
		api._request(method, path, data)
	return str(info.value)


@pytest.mark.parametrize(
	"function", ["frappe.os.system", "frappe.utils.execute_in_shell", "frappe.db.sql", "frappe.get_attr"]
)
def test_01_escapes_are_refused_over_rest(api, function):
	body = refused(
		api,
		"POST",
		"/api/resource/BTU%20Task",
		{
			"doctype": "BTU Task",
			"desc_short": f"escape {TOKEN}",
			"function_string": function,
			"max_task_duration": 60,
		},
	)
	assert "417" in body and ("not declared runnable" in body or "reaches" in body), body
	body = refused(
		api,
		"POST",
		"/api/method/btu.api.run_function",
		{"function_path": function, "arguments": {"command": "id"}},
	)
	assert "417" in body, body


def test_02_state_changes_refuse_get(api):
	for method in (
		"btu.api.run_now",
		"btu.btu_api.endpoints.run_task_now",
		"btu.btu_api.endpoints.resync_all_schedules",
	):
		body = refused(api, "GET", f"/api/method/{method}?task=BTU-00001")
		assert "HTTP 403" in body or "HTTP 405" in body, body


def test_03_hostile_text_is_stored_as_typed_and_runs_nowhere(api):
	task = api.insert_submitted(
		{
			"doctype": "BTU Task",
			"desc_short": HOSTILE[:140],
			"task_group": HOSTILE_GROUP,
			"desc_long": TEMPLATE,
			"function_string": "btu.btu_core.sample_tasks.hello",
			"arguments": json.dumps({"name": HOSTILE}),
			"max_task_duration": 60,
		}
	)
	MADE["task"] = task["name"]
	stored = api.get_doc("BTU Task", task["name"])
	assert (stored["desc_short"], stored["task_group"]) == (HOSTILE[:140], HOSTILE_GROUP)  # not sanitized
	run = api.call("btu.btu_api.endpoints.run_task_now", task=task["name"])
	assert run["status"] == "Success", run
	MADE["log"] = run["log"]
	log = api.get_doc("BTU Task Log", run["log"])
	assert f"Hello, {HOSTILE}!" in log["stdout"]  # stored exactly: nothing sanitized away
	assert HOSTILE in log["result_message"]


def assert_literal(desk, *texts: str) -> None:
	desk.page.wait_for_timeout(500)
	assert desk.page.evaluate("() => window.__xss") is None, "a hostile string ran as script"
	body = desk.page.inner_text("body")
	for text in texts:
		assert text in body, f"{text!r} is not shown as text"


@pytest.mark.parametrize(
	("route", "shot", "visible"),
	[
		("/app/btu-task-log/{log}", "xss-task-log-form", [f"Hello, {HOSTILE}!", "<b>bold</b>"]),
		("/app/btu-task-log?task={task}", "xss-task-log-list", [TOKEN]),
		("/app/btu-task/{task}", "xss-task-form", [TEMPLATE]),
		("/app/btu-task?name={task}", "xss-task-list", ["<b>bold</b>"]),
		("/app/btu-task/view/report?name={task}", "xss-task-report-view", ["<b>bold</b>"]),
		(
			"/app/query-report/Task Log Summary?task={task}",
			"xss-task-log-summary",
			["<b>bold</b>", HOSTILE_GROUP],
		),
		("/app/btu-scheduler-status", "xss-status-page", [TOKEN]),
		("/printview?doctype=BTU%20Task%20Log&name={log}&format=Standard", "xss-print-view", [TOKEN]),
	],
)
def test_04_every_page_shows_it_as_text(desk, route, shot, visible):
	if route.startswith("/printview"):  # a page of its own, without Desk
		desk.page.goto(desk.base_url + route.format(**MADE))
		desk.page.wait_for_load_state("networkidle")
	else:
		desk.goto(route.format(**MADE))
	desk.page.wait_for_timeout(1500)
	assert_literal(desk, *visible)
	desk.shot(shot)


def test_05_the_report_chart_tooltip_shows_text(desk):
	desk.goto(f"/app/query-report/Task Log Summary?task={MADE['task']}")
	bar = desk.page.locator(".chart-container .bar, .chart-container rect.bar").first
	bar.wait_for(timeout=15_000)
	bar.hover()
	desk.page.wait_for_timeout(500)
	assert_literal(desk)
	desk.shot("xss-report-chart-tooltip")


class User:
	"""A user made for this test and removed with every trace Frappe keeps of it."""

	def __init__(self, api: Api, kind: str, base_url: str) -> None:
		self.email = f"btu-{kind.lower().replace(' ', '-')}-{TOKEN}@example.invalid"
		self.password = f"Btu-{uuid.uuid4().hex}!"
		api.insert(
			{
				"doctype": "User",
				"email": self.email,
				"first_name": f"BTU {kind}",
				"user_type": kind,
				"send_welcome_email": 0,
				"new_password": self.password,
			}
		)
		self.base_url = base_url.rstrip("/")
		self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

	def login(self) -> None:
		self.status("POST", "/api/method/login", {"usr": self.email, "pwd": self.password}, expect=200)

	def status(self, method: str, path: str, data: dict | None = None, expect: int | None = None) -> int:
		request = urllib.request.Request(
			self.base_url + path,
			data=json.dumps(data).encode() if data is not None else None,
			method=method,
			headers={"Content-Type": "application/json", "Accept": "application/json"},
		)
		try:
			with self.opener.open(request, timeout=60) as response:
				code = response.status
		except urllib.error.HTTPError as exc:
			code = exc.code
		if expect is not None:
			assert code == expect, f"{method} {path}: HTTP {code}"
		return code


def remove_user(api: Api, email: str) -> None:
	api.delete("User", email)
	for doctype, field in (
		("Deleted Document", "deleted_name"),
		("Activity Log", "user"),
		("Access Log", "user"),
	):
		try:
			for row in api.get_list(doctype, filters=[[field, "=", email]]):
				api.delete(doctype, row["name"])
		except AssertionError:
			pass  # a DocType this Frappe does not have, or nothing to remove


@pytest.mark.parametrize("kind", ["Website User", "System User"])
def test_06_users_without_btu_roles_get_403_counts_included(api, bench_config, kind):
	user = User(api, kind, bench_config.base_url)
	try:
		user.login()
		quoted = urllib.parse.quote
		for doctype in ("BTU Task Log", "BTU Task", "BTU Task Schedule"):
			assert user.status("GET", f"/api/resource/{quoted(doctype)}") == 403
			count = f"/api/method/frappe.client.get_count?doctype={quoted(doctype)}"
			assert user.status("GET", count) == 403, f"{kind} may count {doctype}"
		assert user.status("GET", f"/api/resource/BTU%20Task%20Log/{quoted(MADE['log'])}") == 403
		assert user.status("POST", "/api/method/btu.api.run_now", {"task": MADE["task"]}) == 403
		# Frappe's own counting is unchanged for other DocTypes
		assert user.status("GET", "/api/method/frappe.client.get_count?doctype=ToDo") == 200
	finally:
		remove_user(api, user.email)
