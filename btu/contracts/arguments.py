"""Task arguments: JSON objects only (never pickle or eval), merged task <- schedule overrides."""

from __future__ import annotations

import json
from typing import Any


class ArgumentsError(ValueError):
	"""Arguments that are not a JSON object; the message says where and what."""


def parse_arguments(text: str | None, where: str) -> dict[str, Any]:
	"""Parse a JSON object of keyword arguments; empty means no arguments.

	``where`` names the source in error messages, e.g. "BTU Task BTU-00001 arguments".
	"""
	if text is None:
		return {}
	if isinstance(text, dict):
		return dict(text)
	if not isinstance(text, str):
		raise ArgumentsError(f"{where}: expected JSON text, got {type(text).__name__}.")
	if not text.strip():
		return {}
	try:
		value = json.loads(text)
	except json.JSONDecodeError as exc:
		raise ArgumentsError(
			f"{where}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."
		) from None
	except RecursionError:
		raise ArgumentsError(f"{where}: invalid JSON: arrays or objects nested too deeply.") from None
	except ValueError as exc:  # e.g. a number with more digits than Python converts
		raise ArgumentsError(f"{where}: invalid JSON: {str(exc).split(':')[0]}.") from None
	if value is None:
		return {}
	if not isinstance(value, dict):
		raise ArgumentsError(
			f'{where}: expected a JSON object such as {{"name": "value"}}, got a JSON {_json_kind(value)}.'
		)
	return value


def merge_arguments(task_arguments: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
	"""The schedule's overrides win over the task's arguments, key by key (shallow)."""
	merged = dict(task_arguments or {})
	merged.update(overrides or {})
	return merged


def _json_kind(value: object) -> str:
	if isinstance(value, list):
		return "array"
	if isinstance(value, str):
		return "string"
	if isinstance(value, bool):
		return "boolean"
	return "number"
