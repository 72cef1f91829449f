"""A real Frappe v15 bench, driven as its administrator would: bench commands run as the bench's
Unix user, its own processes (web, socketio, Redis, worker) and the BTU daemon as
``bench btu-scheduler setup-procfile`` arranges them, the REST API, and Desk in Chromium.

Configured by environment variables (see tests/bench/README.md):
  BTU_BENCH       path of the bench (required; the suite is skipped without it)
  BTU_SITE        the site with BTU installed (required)
  BTU_SITE2       a second site with BTU installed (optional: the multi-site checks)
  BTU_BENCH_USER  Unix user that runs bench (default: the owner of BTU_BENCH)
  BTU_ADMIN_PASSWORD   Administrator's password (default: admin)
  BTU_BASE_URL    Desk's address (default: http://<site>:<webserver_port>)
  BTU_CHROMIUM    the browser (default: /usr/bin/chromium); never downloaded
  BTU_SCREENSHOTS folder for screenshots (default: a new folder under /tmp, printed at the end)
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any, Callable

from btu.contracts import protocol

TRACKED = ("BTU Alert", "BTU Task Log", "BTU Task Schedule", "BTU Task", "BTU Holiday List")


def wait_for(
	predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.25, what: str = ""
) -> Any:
	deadline = time.monotonic() + timeout
	while True:
		value = predicate()
		if value:
			return value
		if time.monotonic() > deadline:
			raise AssertionError(f"timed out after {timeout:g} s waiting for {what or 'condition'}")
		time.sleep(interval)


@dataclass
class BenchConfig:
	path: str
	site: str
	site2: str | None
	user: str
	admin_password: str
	base_url: str
	chromium: str
	screenshots: str

	@classmethod
	def from_environment(cls) -> "BenchConfig | None":
		path, site = os.environ.get("BTU_BENCH"), os.environ.get("BTU_SITE")
		if not path or not site:
			return None
		path = os.path.realpath(path)
		user = os.environ.get("BTU_BENCH_USER") or pwd.getpwuid(os.stat(path).st_uid).pw_name
		common = json.loads(Path(path, "sites", "common_site_config.json").read_text())
		port = common.get("webserver_port", 8000)
		shots = os.environ.get("BTU_SCREENSHOTS") or os.path.join(
			"/tmp", f"btu-bench-screenshots-{time.strftime('%Y%m%d-%H%M%S')}"
		)
		return cls(
			path=path,
			site=site,
			site2=os.environ.get("BTU_SITE2") or None,
			user=user,
			admin_password=os.environ.get("BTU_ADMIN_PASSWORD", "admin"),
			base_url=os.environ.get("BTU_BASE_URL", f"http://{site}:{port}"),
			chromium=os.environ.get("BTU_CHROMIUM", "/usr/bin/chromium"),
			screenshots=shots,
		)


class Bench:
	"""Commands on the bench, run as its user (``su -`` from root, so its profile's PATH applies)."""

	def __init__(self, config: BenchConfig) -> None:
		self.config = config
		self.path = config.path
		self.socket_path = protocol.default_socket_path(config.path)

	def shell(self, command: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
		script = f"cd {shlex.quote(self.path)} && unset PYTHONDONTWRITEBYTECODE && {command}"
		if pwd.getpwuid(os.getuid()).pw_name == self.config.user:
			args = ["bash", "-lc", script]
		else:
			args = ["su", "-", self.config.user, "-c", script]
		result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
		if check and result.returncode != 0:
			raise AssertionError(
				f"`{command}` exited {result.returncode}\nstdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
			)
		return result

	def bench(self, *args: str, site: str | None = None, timeout: float = 600, check: bool = True):
		site_args = ["--site", site] if site else []
		return self.shell(shlex.join(["bench", *site_args, *args]), timeout=timeout, check=check)

	def execute(self, method: str, site: str | None = None, **kwargs: Any) -> Any:
		"""``bench --site SITE execute METHOD --kwargs JSON``; the printed return value, parsed."""
		args = ["execute", method]
		if kwargs:
			args += ["--kwargs", json.dumps(kwargs)]
		out = self.bench(*args, site=site or self.config.site).stdout.strip()
		last = out.splitlines()[-1] if out else ""
		try:
			return json.loads(last)
		except json.JSONDecodeError:
			return last

	def popen(self, command: str, log_path: str) -> subprocess.Popen:
		"""A long-running command as the bench user, in a session of its own (stopped by its pid)."""
		script = f"cd {shlex.quote(self.path)} && unset PYTHONDONTWRITEBYTECODE && exec {command}"
		if pwd.getpwuid(os.getuid()).pw_name == self.config.user:
			args = ["bash", "-lc", script]
		else:
			args = ["su", "-", self.config.user, "-c", script]
		log = open(log_path, "ab")
		return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

	def procfile(self) -> dict[str, str]:
		entries = {}
		for line in Path(self.path, "Procfile").read_text().splitlines():
			if ":" in line and not line.lstrip().startswith("#"):
				name, command = line.split(":", 1)
				entries[name.strip()] = command.strip()
		return entries

	def common_config(self) -> dict[str, Any]:
		return json.loads(Path(self.path, "sites", "common_site_config.json").read_text())


def stop_session(process: subprocess.Popen, timeout: float = 20) -> None:
	"""SIGTERM the process group of ``process`` (its own session), then SIGKILL what is left."""
	if process.poll() is not None:
		return
	try:
		os.killpg(process.pid, signal.SIGTERM)
	except ProcessLookupError:
		return
	try:
		process.wait(timeout)
	except subprocess.TimeoutExpired:
		os.killpg(process.pid, signal.SIGKILL)
		process.wait(10)


class Api:
	"""Frappe's REST API as Administrator (cookie session). With ``site``, every request names it in
	``X-Frappe-Site-Name``, which Frappe's web server follows unless it was started for one site
	(``bench serve`` on a bench with a default site serves that site for every request):
	``served_site()`` says which site really answered."""

	def __init__(self, base_url: str, password: str, site: str | None = None) -> None:
		self.base_url = base_url.rstrip("/")
		self.site = site
		self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
		self.call("login", usr="Administrator", pwd=password)

	def served_site(self) -> str:
		"""The site that answers this API's requests (frappe.local.site, as BTU's Failed Jobs page
		reports it)."""
		return self.call("btu.btu_api.failed_jobs.list_failed_jobs")["site"]

	def _request(self, method: str, path: str, data: dict | None = None) -> Any:
		body = json.dumps(data).encode() if data is not None else None
		request = urllib.request.Request(
			self.base_url + path,
			data=body,
			method=method,
			headers={
				"Content-Type": "application/json",
				"Accept": "application/json",
				**({"X-Frappe-Site-Name": self.site} if self.site else {}),
			},
		)
		try:
			with self.opener.open(request, timeout=60) as response:
				return json.loads(response.read() or b"{}")
		except urllib.error.HTTPError as exc:
			raise AssertionError(f"{method} {path}: HTTP {exc.code}: {exc.read()[:2000]!r}") from None

	def call(self, method: str, **kwargs: Any) -> Any:
		return self._request("POST", f"/api/method/{method}", kwargs).get("message")

	def get_list(
		self, doctype: str, filters: Any = None, fields: list[str] | None = None, limit: int = 0
	) -> list:
		query = {"fields": json.dumps(fields or ["name"]), "limit_page_length": str(limit)}
		if filters is not None:
			query["filters"] = json.dumps(filters)
		path = f"/api/resource/{urllib.parse.quote(doctype)}?{urllib.parse.urlencode(query)}"
		return self._request("GET", path)["data"]

	def get_doc(self, doctype: str, name: str) -> dict:
		return self._request(
			"GET", f"/api/resource/{urllib.parse.quote(doctype)}/{urllib.parse.quote(name)}"
		)["data"]

	def insert(self, doc: dict) -> dict:
		return self._request("POST", f"/api/resource/{urllib.parse.quote(doc['doctype'])}", doc)["data"]

	def insert_submitted(self, doc: dict) -> dict:
		saved = self.insert(doc)
		return self.call("frappe.client.submit", doc={**saved, "doctype": doc["doctype"]})

	def names(self, doctype: str) -> set[str]:
		return {row["name"] for row in self.get_list(doctype)}

	def delete(self, doctype: str, name: str) -> None:
		self._request("DELETE", f"/api/resource/{urllib.parse.quote(doctype)}/{urllib.parse.quote(name)}")


@dataclass
class SiteSnapshot:
	"""The BTU records of a site at one moment, to leave it as it was found."""

	names: dict[str, set[str]] = field(default_factory=dict)

	@classmethod
	def take(cls, api: Api) -> "SiteSnapshot":
		return cls({doctype: api.names(doctype) for doctype in TRACKED})

	def new_since(self, api: Api) -> dict[str, list[str]]:
		return {doctype: sorted(api.names(doctype) - self.names[doctype]) for doctype in TRACKED}


def delete_new_records(api: Api, snapshot: SiteSnapshot) -> dict[str, list[str]]:
	"""Delete every BTU record made since ``snapshot`` (cancelling submitted tasks first) and the
	Email Queue entries about them, as an administrator would in Desk."""
	new = snapshot.new_since(api)
	references = [name for names in new.values() for name in names]
	if references:
		for row in api.get_list("Email Queue", filters=[["reference_name", "in", references]]):
			api.delete("Email Queue", row["name"])
	# Then Run rows first: Frappe refuses to cancel a task that a submitted task chains to.
	for name in new["BTU Task"]:
		if name in api.names("BTU Task") and (doc := api.get_doc("BTU Task", name)).get("then_run"):
			api.call("frappe.client.save", doc={**doc, "then_run": []})
	for doctype in TRACKED:
		for name in reversed(new[doctype]):  # an amended task after the one it amends
			if name not in api.names(doctype):
				continue  # gone meanwhile (a transient task BTU deleted itself, a test's own cleanup)
			if doctype == "BTU Task":
				doc = api.get_doc(doctype, name)
				if doc.get("docstatus") == 1:
					api.call("frappe.client.cancel", doctype=doctype, name=name)
			api.delete(doctype, name)
	return new
