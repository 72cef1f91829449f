"""Install and migrate hooks: standard queues and BTU Configuration defaults."""

from __future__ import annotations

import frappe

from btu.contracts.queues import STANDARD_QUEUES

CONFIGURATION_DEFAULTS = {
	"email_subject_prefix": "[BTU]",
}


def after_install() -> None:
	ensure_queues()
	ensure_configuration()
	announce_to_daemon()


def announce_to_daemon() -> None:
	"""Once the install has committed, ask a running daemon for a refresh of this site: a daemon
	already serving the bench finds the new site and serves it at once, instead of at its next full
	refresh. Silent when no daemon answers (it finds the site when it starts)."""
	from btu.btu_api.daemon_link import PROBE_SECONDS, socket_path
	from btu.contracts import protocol

	try:
		path, site = socket_path(), frappe.local.site
	except Exception:  # noqa: BLE001 - an install never fails for the daemon's sake
		return

	def send() -> None:
		reply = protocol.refresh(path, site, timeout=PROBE_SECONDS)
		if reply.reachable and not reply.ok:
			frappe.logger("btu").warning(
				f"BTU daemon refused the refresh of new site {site}: {reply.message}"
			)

	frappe.db.after_commit.add(send)


def after_migrate() -> None:
	"""Also after migrating from the original BTU, whose sites may lack these records."""
	ensure_queues()
	ensure_configuration()


def before_uninstall() -> None:
	"""Ask the daemon to drop this site's schedules once the uninstall has committed."""
	from btu.btu_api.daemon_link import notify_after_commit

	for name in frappe.get_all("BTU Task Schedule", pluck="name"):
		notify_after_commit("cancel", name)


def ensure_queues() -> list[str]:
	"""Create the BTU Queues short, default and long when missing; return the created names."""
	created = []
	for name, description in STANDARD_QUEUES.items():
		if not frappe.db.exists("BTU Queue", name):
			frappe.get_doc({"doctype": "BTU Queue", "description": description}).insert(
				set_name=name, ignore_permissions=True
			)
			created.append(name)
	return created


def after_setup_wizard(args=None) -> None:
	"""A site installed with BTU before its setup wizard (``bench new-site --install-app btu``) gets
	the zone the wizard chose."""
	ensure_configuration()


def site_time_zone() -> str | None:
	"""The site's own zone (System Settings), once it has one."""
	return (frappe.db.get_single_value("System Settings", "time_zone") or "").strip() or None


def ensure_configuration() -> None:
	"""Fill empty BTU Configuration settings with their defaults (never overwrites a value): the
	schedules' default zone is the site's own (System Settings), as a Frappe administrator expects."""
	defaults = dict(CONFIGURATION_DEFAULTS)
	if zone := site_time_zone():
		defaults["cron_time_zone"] = zone
	missing = {
		field: value
		for field, value in defaults.items()
		if not frappe.db.get_single_value("BTU Configuration", field)
	}
	if missing:
		frappe.db.set_single_value("BTU Configuration", missing)
	ensure_numeric_defaults()


# Settings where 0 is a choice (none / keep all), so only a missing row counts as unset: a Single's
# field that was never saved reads as 0.
NUMERIC_DEFAULTS = {
	"default_start_deadline": 3600,  # seconds: the daemon's default misfire_grace
	"keep_finished_one_shots_days": 30,
}


def ensure_numeric_defaults() -> None:
	"""Store each of NUMERIC_DEFAULTS where no value is stored yet (a value set is kept)."""
	stored = set(
		frappe.db.sql_list(
			"SELECT field FROM `tabSingles` WHERE doctype = 'BTU Configuration' AND field IN %(fields)s",
			{"fields": tuple(NUMERIC_DEFAULTS)},
		)
	)
	missing = {field: value for field, value in NUMERIC_DEFAULTS.items() if field not in stored}
	if missing:
		frappe.db.set_single_value("BTU Configuration", missing)
