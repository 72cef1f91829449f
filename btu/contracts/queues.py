"""Frappe's standard RQ queues: its workers listen on these (any other BTU Queue needs a worker
started with ``bench worker --queue <name>``)."""

from __future__ import annotations

STANDARD_QUEUES: dict[str, str] = {
	"short": "Frappe's short queue (default timeout 300 s).",
	"default": "Frappe's default queue (default timeout 300 s).",
	"long": "Frappe's long queue (default timeout 1500 s).",
}
