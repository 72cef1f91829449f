"""Upgrade from the original BTU: its email settings and environment name.

The original BTU Configuration sent mail itself (SMTP fields or Mandrill) and put its
``environment_name`` in every subject as ``(<name>)``. BTU sends through a Frappe Email Account
(BTU Configuration > Email Account) with BTU Configuration's *Email Subject Prefix*. Their old
values stay in tabSingles (and the password in __Auth); this patch

* adds ``(<environment_name>)`` to the subject prefix, so mails still say which environment sent them;
* links an existing Email Account with the same SMTP server and address, or says how to create
  one from the old settings: ``bench --site <site> execute
  btu.patches.v1_0.carry_original_email_settings.create_email_account`` (it connects to the SMTP
  server to check the login, so it is not run during migrate), or, for Mandrill, what to enter.
"""

from __future__ import annotations

import frappe
from frappe.utils.password import get_decrypted_password

from btu.btu_core.legacy_config import (
	ORIGINAL_EMAIL_FIELDS,
	email_account_values,
	subject_prefix_with_environment,
)

COMMAND = "btu.patches.v1_0.carry_original_email_settings.create_email_account"


def original_settings() -> dict[str, str | None]:
	rows = frappe.db.sql(
		"SELECT field, value FROM `tabSingles` WHERE doctype = 'BTU Configuration' AND field IN %(fields)s",
		{"fields": ORIGINAL_EMAIL_FIELDS},
	)
	return dict(rows)


def execute() -> None:
	settings = original_settings()
	if not settings:
		return
	prefix = frappe.db.get_single_value("BTU Configuration", "email_subject_prefix")
	new_prefix = subject_prefix_with_environment(prefix, settings.get("environment_name"))
	if new_prefix:
		frappe.db.set_single_value("BTU Configuration", "email_subject_prefix", new_prefix)
		say(f"email subject prefix is now {new_prefix!r} (the original's environment_name)")
	if frappe.db.get_single_value("BTU Configuration", "email_account"):
		return
	values, lines = email_account_values(settings)
	for line in lines:
		say(line)
	if values is None:
		if lines:
			frappe.log_error(title="BTU upgrade: choose an Email Account for BTU", message="\n".join(lines))
		return
	existing = frappe.db.get_value(
		"Email Account", {"email_id": values["email_id"], "smtp_server": values["smtp_server"]}, "name"
	)
	if existing:
		frappe.db.set_single_value("BTU Configuration", "email_account", existing)
		say(f"BTU Configuration > Email Account is now {existing!r} (same server and address)")
		return
	message = (
		f"to create Email Account {values['email_account_name']!r} from them (the stored password "
		f"included) and make it BTU's, run: bench --site {frappe.local.site} execute {COMMAND}; or create "
		"one in Desk > Email Account and choose it in BTU Configuration > Email Account"
	)
	say(message)
	frappe.log_error(title="BTU upgrade: create BTU's Email Account", message="\n".join([*lines, message]))


def create_email_account() -> str:
	"""Create an outgoing Email Account from the original's SMTP settings and make it BTU's."""
	values, lines = email_account_values(original_settings())
	if values is None:
		frappe.throw("\n".join(lines) or "The original BTU Configuration has no SMTP settings to carry over.")
	password = get_decrypted_password(
		"BTU Configuration", "BTU Configuration", "email_auth_password", raise_exception=False
	)
	account = frappe.get_doc({"doctype": "Email Account", **values, "password": password})
	if not password:
		account.awaiting_password = 1
	account.insert(ignore_permissions=True)
	frappe.db.set_single_value("BTU Configuration", "email_account", account.name)
	frappe.db.commit()
	say(f"Email Account {account.name!r} created and chosen in BTU Configuration")
	return account.name


def say(line: str) -> None:
	print(f"BTU upgrade: {line}")
