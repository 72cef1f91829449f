"""The operations docs stay complete: every configuration key, log event and metric is documented."""

from __future__ import annotations

import re

from btu.contracts.protocol import REQUEST_TYPES
from btu.scheduler_daemon import config
from btu.scheduler_daemon.metrics import COUNTERS

from .services import REPO

DOCS = REPO / "docs"


def test_every_configuration_key_and_variable_is_in_operations_md():
	text = (DOCS / "operations.md").read_text()
	for key in config.DAEMON_KEYS:
		assert f"| `{key}` |" in text, key
		assert f"`BTU_{key.upper()}`" in text, key
	for key in config.SITE_KEYS:
		assert f"| `{key}` |" in text, key
	for key in (*config.ORIGINAL_TOML_KEYS, *config.ORIGINAL_SITE_KEYS, *config.ORIGINAL_REDIS_KEYS):
		assert f"`{key}`" in text, key
	for key in config.BENCH_BTU_KEYS:
		assert f"`{key}`" in text, key
	for variable in ("BTU_CONFIG", "BTU_BENCH_PATH", "BTU_SITES", "BTU_SITE_NAME"):
		assert variable in text


def test_every_log_event_and_metric_is_in_operations_md():
	text = (DOCS / "operations.md").read_text()
	events = set()
	for path in (REPO / "btu" / "scheduler_daemon").glob("*.py"):
		events.update(re.findall(r'log_event\(\s*log,\s*[^"]*?"([a-z_]+)"', path.read_text(), re.S))
	assert {"daemon_started", "run_enqueued", "refresh_progress"} <= events
	internal = {"fire_batch_retry", "socket_reply_failed", "socket_accept_failed"}  # DEBUG/rare plumbing
	missing = sorted(e for e in events - internal if f"`{e}`" not in text)
	assert not missing, f"events not documented in docs/operations.md: {missing}"
	for name in [*COUNTERS, "btu_redis_reconnects", "btu_sql_reconnects"]:
		assert f"`{name}_total" in text, name
	for name in (
		"btu_enqueue_lateness_seconds",
		"btu_schedules{site}",
		"btu_leader",
		"btu_redis_up",
		"btu_refresh_last_duration_seconds",
		"btu_internal_queue_size{lane}",
	):
		assert f"`{name}" in text, name


def test_socket_protocol_md_lists_every_request_and_links_exist():
	text = (DOCS / "socket-protocol.md").read_text()
	for request_type in REQUEST_TYPES:
		assert f"`{request_type}`" in text
	for doc in ("operations.md", "installation.md", "upgrading.md", "socket-protocol.md"):
		for target in re.findall(r"\]\(([a-z-]+\.md)", (DOCS / doc).read_text()):
			assert (DOCS / target).exists(), f"{doc} links to missing {target}"


def test_user_guide_documents_transient_tasks():
	guide = (DOCS / "user-guide.md").read_text()
	assert "is_transient" in guide or "Is Transient" in guide
