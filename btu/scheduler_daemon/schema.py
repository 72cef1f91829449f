"""Build the BTU tables in MariaDB from the app's DocType JSON files (the one source of truth).

Mirrors how Frappe v15 maps field types to MariaDB columns, for standalone use and tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import pymysql

from btu.contracts.queues import STANDARD_QUEUES

DOCTYPE_DIR = Path(__file__).resolve().parent.parent / "btu_core" / "doctype"

# Frappe v15 frappe/database/mariadb/database.py type map (columns only; layout fields have none).
COLUMN_TYPES: dict[str, str] = {
	"Currency": "decimal(21,9)",
	"Int": "int(11)",
	"Long Int": "bigint(20)",
	"Float": "decimal(21,9)",
	"Percent": "decimal(21,9)",
	"Check": "int(1)",
	"Small Text": "text",
	"Long Text": "longtext",
	"Code": "longtext",
	"Text Editor": "longtext",
	"Markdown Editor": "longtext",
	"HTML Editor": "longtext",
	"Date": "date",
	"Datetime": "datetime(6)",
	"Time": "time(6)",
	"Text": "text",
	"Data": "varchar(140)",
	"Link": "varchar(140)",
	"Dynamic Link": "varchar(140)",
	"Password": "text",
	"Select": "varchar(140)",
	"Read Only": "varchar(140)",
	"Attach": "text",
	"Attach Image": "text",
	"Signature": "longtext",
	"Color": "varchar(140)",
	"Barcode": "longtext",
	"Geolocation": "longtext",
	"Duration": "decimal(21,9)",
	"Icon": "varchar(140)",
	"Phone": "varchar(140)",
	"Autocomplete": "varchar(140)",
	"JSON": "json",
	"Rating": "decimal(3,2)",
}
NUMERIC = {"Int", "Long Int", "Check", "Float", "Currency", "Percent", "Duration", "Rating"}
STANDARD_COLUMNS = [
	"`name` varchar(140) NOT NULL",
	"`creation` datetime(6) DEFAULT NULL",
	"`modified` datetime(6) DEFAULT NULL",
	"`modified_by` varchar(140) DEFAULT NULL",
	"`owner` varchar(140) DEFAULT NULL",
	"`docstatus` int(1) NOT NULL DEFAULT 0",
	"`idx` int(8) NOT NULL DEFAULT 0",
]
CHILD_COLUMNS = [
	"`parent` varchar(140) DEFAULT NULL",
	"`parentfield` varchar(140) DEFAULT NULL",
	"`parenttype` varchar(140) DEFAULT NULL",
]
META_COLUMNS = ["`_user_tags` text", "`_comments` text", "`_assign` text", "`_liked_by` text"]


def load_doctypes(directory: Path = DOCTYPE_DIR) -> list[dict[str, Any]]:
	"""Every DocType JSON of the app, sorted by name."""
	docs = []
	for path in sorted(directory.glob("*/*.json")):
		data = json.loads(path.read_text(encoding="utf-8"))
		if isinstance(data, dict) and data.get("doctype") == "DocType":
			docs.append(data)
	if not docs:
		raise FileNotFoundError(f"no DocType JSON files found under {directory}")
	return docs


def _column(field: dict[str, Any]) -> str | None:
	column_type = COLUMN_TYPES.get(field.get("fieldtype", ""))
	if column_type is None:
		return None
	default = field.get("default")
	clause = ""
	if field["fieldtype"] in NUMERIC:
		try:
			clause = f" NOT NULL DEFAULT {float(default or 0):g}"
		except (TypeError, ValueError):
			clause = " NOT NULL DEFAULT 0"
	elif (
		default not in (None, "")
		and column_type.startswith("varchar")
		and not str(default).startswith(("eval:", "__"))
	):
		clause = " DEFAULT " + pymysql.converters.escape_string(str(default)).join("''")
	return f"`{field['fieldname']}` {column_type}{clause}"


def create_table_sql(doctype: dict[str, Any]) -> str | None:
	"""CREATE TABLE for one DocType (None for singles, stored in tabSingles)."""
	if doctype.get("issingle"):
		return None
	columns = list(STANDARD_COLUMNS)
	columns += CHILD_COLUMNS if doctype.get("istable") else META_COLUMNS
	columns += [c for c in (_column(f) for f in doctype.get("fields", [])) if c]
	indexes = ["PRIMARY KEY (`name`)", "KEY `modified` (`modified`)"]
	if doctype.get("istable"):
		indexes.append("KEY `parent` (`parent`)")
	body = ",\n  ".join(columns + indexes)
	return (
		f"CREATE TABLE IF NOT EXISTS `tab{doctype['name']}` (\n  {body}\n) "
		"ENGINE=InnoDB ROW_FORMAT=DYNAMIC CHARACTER SET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
	)


SINGLES_SQL = (
	"CREATE TABLE IF NOT EXISTS `tabSingles` (`doctype` varchar(140) DEFAULT NULL, "
	"`field` varchar(140) DEFAULT NULL, `value` longtext, KEY `singles_doctype_field_index` (`doctype`, `field`)) "
	"ENGINE=InnoDB CHARACTER SET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
)


def schema_statements(doctypes: Iterable[dict[str, Any]] | None = None) -> list[str]:
	statements = [SINGLES_SQL]
	for doctype in doctypes if doctypes is not None else load_doctypes():
		sql = create_table_sql(doctype)
		if sql:
			statements.append(sql)
	return statements


def single_defaults(doctypes: Iterable[dict[str, Any]] | None = None) -> list[tuple[str, str, str]]:
	rows = []
	for doctype in doctypes if doctypes is not None else load_doctypes():
		if doctype.get("issingle"):
			for field in doctype.get("fields", []):
				if field.get("default") not in (None, "") and field.get("fieldtype") in COLUMN_TYPES:
					rows.append((doctype["name"], field["fieldname"], str(field["default"])))
	return rows


def init_database(connection_args: dict[str, Any], db_name: str) -> list[str]:
	"""Create ``db_name`` if needed and every BTU table in it; returns the table names."""
	safe = db_name.replace("`", "``")
	conn = pymysql.connect(**connection_args, autocommit=True)
	try:
		with conn.cursor() as cur:
			cur.execute(
				f"CREATE DATABASE IF NOT EXISTS `{safe}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
			)
			cur.execute(f"USE `{safe}`")
			doctypes = load_doctypes()
			for statement in schema_statements(doctypes):
				cur.execute(statement)
			for doctype, fieldname, value in single_defaults(doctypes):
				cur.execute("SELECT 1 FROM `tabSingles` WHERE doctype=%s AND field=%s", (doctype, fieldname))
				if not cur.fetchone():
					cur.execute(
						"INSERT INTO `tabSingles` (doctype, field, value) VALUES (%s, %s, %s)",
						(doctype, fieldname, value),
					)
			for queue in STANDARD_QUEUES:
				if any(d["name"] == "BTU Queue" for d in doctypes):
					cur.execute(
						"INSERT IGNORE INTO `tabBTU Queue` (name, creation, modified, owner, modified_by) "
						"VALUES (%s, NOW(6), NOW(6), 'Administrator', 'Administrator')",
						(queue,),
					)
	finally:
		conn.close()
	return ["tabSingles"] + [f"tab{d['name']}" for d in load_doctypes() if not d.get("issingle")]
