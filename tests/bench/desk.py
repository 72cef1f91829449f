"""Desk in headless Chromium (Debian's ``chromium`` through Playwright, never a downloaded browser):
log in, open BTU pages, fill and save forms, and collect every browser console error."""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

# Chromium on a closed network: no background connections (they are refused, many at a time).
CHROMIUM_ARGS = [
	"--no-sandbox",
	"--disable-gpu",
	"--disable-quic",
	"--no-first-run",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
	"--disable-dev-shm-usage",
]


@dataclass
class ConsoleError:
	page: str
	text: str


@dataclass
class Desk:
	page: Any
	base_url: str
	screenshots: Path
	errors: list[ConsoleError] = field(default_factory=list)
	expected: list[re.Pattern] = field(default_factory=list)
	shots: list[str] = field(default_factory=list)
	prefix: str = ""  # a second site's Desk names its screenshots apart

	def attach(self) -> None:
		self.page.on("console", self._on_console)
		self.page.on("pageerror", lambda exc: self._record(f"uncaught: {exc}"))
		self.page.on("response", self._on_response)

	def _on_response(self, response: Any) -> None:
		# The console's "Failed to load resource" line has no address: record the response instead.
		if response.status >= 400:
			self._record(f"HTTP {response.status} {response.request.method} {response.url}")

	def _on_console(self, message: Any) -> None:
		if message.type == "error" and not message.text.startswith("Failed to load resource"):
			self._record(message.text)

	def _record(self, text: str) -> None:
		if any(pattern.search(text) for pattern in self.expected):
			return
		self.errors.append(ConsoleError(self.page.url, text))

	@contextmanager
	def expecting_errors(self, *patterns: str) -> Iterator[None]:
		"""Console errors a deliberate validation failure logs (Frappe prints the server's exception
		and the browser the 417 of the request): allowed inside the block only."""
		compiled = [re.compile(p) for p in patterns]
		self.expected.extend(compiled)
		try:
			yield
		finally:
			time.sleep(0.3)  # late console lines of the same request
			for pattern in compiled:
				self.expected.remove(pattern)

	def take_errors(self) -> list[ConsoleError]:
		found, self.errors = self.errors, []
		return found

	# --- navigation ---------------------------------------------------------------------------
	def login(self, password: str) -> None:
		self.page.goto(self.base_url + "/login")
		self.page.fill("#login_email", "Administrator")
		self.page.fill("#login_password", password)
		self.page.click(".btn-login")
		self.page.wait_for_url(re.compile(r".*/app.*"), timeout=60_000)
		self.wait_idle()

	def goto(self, route: str) -> None:
		self.page.goto(self.base_url + route)
		self.wait_idle()

	def wait_idle(self) -> None:
		self.page.wait_for_load_state("networkidle")
		self.page.wait_for_function(
			"() => window.frappe && frappe.boot && frappe.dom && !frappe.dom.freeze_count"
		)

	def shot(self, name: str) -> str:
		self.screenshots.mkdir(parents=True, exist_ok=True)
		path = self.screenshots / f"{self.prefix}{len(self.shots) + 1:02d}-{name}.png"
		self.page.screenshot(path=str(path), full_page=True)
		self.shots.append(str(path))
		return str(path)

	# --- forms --------------------------------------------------------------------------------
	def new_form(self, doctype_route: str) -> None:
		self.goto(f"/app/{doctype_route}/new")
		self.page.wait_for_function("() => window.cur_frm && cur_frm.is_new()")

	def open_form(self, route: str, name: str) -> None:
		self.goto(f"/app/{route}/{name}")
		self.page.wait_for_function(
			"(n) => window.cur_frm && cur_frm.doc.name === n && !cur_frm.is_dirty()", arg=name
		)
		self.wait_idle()

	def menu(self, label: str) -> None:
		"""An item of the form's "..." menu (Delete, Duplicate, ...)."""
		self.page.locator(".page-actions .menu-btn-group > button:visible").first.click()
		items = self.page.locator(
			f'.menu-btn-group .dropdown-menu:visible .dropdown-item:has-text("{label}")'
		)
		items.first.wait_for()
		for item in items.all():  # the item named exactly so ("Delete", not "Delete with its schedules")
			if item.inner_text().strip().splitlines()[0].strip() == label:
				item.click()
				return
		raise AssertionError(f"no menu item {label!r} among {items.all_inner_texts()}")

	def field(self, fieldname: str) -> Any:
		return self.page.locator(f'.frappe-control[data-fieldname="{fieldname}"]:visible').first

	def type_into(self, fieldname: str, text: str) -> None:
		"""Type as a user does, into an input, a select or a code editor."""
		control = self.field(fieldname)
		control.wait_for()
		kind = control.get_attribute("data-fieldtype")
		if kind == "Select":
			control.locator("select").select_option(text)
		elif kind == "Code":
			editor = control.locator(".ace_text-input")
			control.locator(".ace_content").click()
			self.page.keyboard.press("Control+A")
			self.page.keyboard.press("Delete")
			editor.type(text)
		elif kind == "Check":
			box = control.locator("input[type=checkbox][data-fieldname]")
			if box.is_checked() != bool(text):
				box.click()
		else:
			box = control.locator("input, textarea").first
			box.click()
			box.fill("")
			box.type(text)
			if kind in ("Link", "Autocomplete"):
				self.page.keyboard.press("Escape")
			box.blur()
		time.sleep(0.2)

	def save(self) -> None:
		self.page.keyboard.press("Control+S")
		self.wait_saved()

	def wait_saved(self) -> None:
		self.page.wait_for_function(
			"() => window.cur_frm && !cur_frm.is_new() && !cur_frm.is_dirty()", timeout=30_000
		)
		self.wait_idle()

	def submit(self) -> None:
		"""Submit the saved form: *Submit*, then *Yes* in "Permanently Submit ...?". Frappe can open that
		confirm twice when Submit is clicked while the form re-renders after its save; once the document
		is submitted, a second one left open is declined (the form is then as a user would see it)."""
		self.page.locator(".page-actions .primary-action:visible:has-text('Submit')").click()
		self.dialog().locator(".btn-primary:has-text('Yes')").click()
		self.page.wait_for_function("() => cur_frm.doc.docstatus === 1", timeout=30_000)
		try:
			self.page.wait_for_function("() => !document.querySelector('.modal.show')", timeout=5_000)
		except Exception:  # noqa: BLE001 - playwright's TimeoutError: the second confirm
			self.page.locator(".modal.show .btn:has-text('No')").first.click()
			self.page.wait_for_function("() => !document.querySelector('.modal.show')", timeout=10_000)
		self.wait_idle()

	def doc(self) -> dict:
		return self.page.evaluate("() => cur_frm.doc")

	def click_button(self, label: str, group: str | None = None) -> None:
		if group:
			self.page.locator(
				f'.inner-group-button[data-label="{group}"] > button, .btn:has-text("{group}")'
			).first.click()
			self.page.locator(f'.dropdown-menu:visible .dropdown-item:has-text("{label}")').first.click()
		else:
			self.page.locator(
				f'.page-actions .btn:visible:has-text("{label}"), .form-inner-toolbar .btn:visible:has-text("{label}")'
			).first.click()

	def dialog(self) -> Any:
		"""The open modal dialog (msgprint or Dialog)."""
		dialog = self.page.locator(".modal.show .modal-dialog").last
		dialog.wait_for(timeout=30_000)
		return dialog

	def close_dialogs(self) -> None:
		for _ in range(3):
			if not self.page.locator(".modal.show").count():
				return
			self.page.keyboard.press("Escape")
			time.sleep(0.4)
