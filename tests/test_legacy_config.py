"""Reading the original daemon's TOML for the upgrade patch."""

from __future__ import annotations

import os
import socket
import threading

from btu.btu_core.legacy_config import (
	BTU_DAEMON,
	DEFAULT_SUBJECT_PREFIX,
	NOTHING,
	ORIGINAL_DAEMON,
	SOMETHING_ELSE,
	email_account_values,
	merge_recipients,
	original_socket_path,
	original_time_zone,
	probe_socket,
	run_later_command,
	subject_prefix_with_environment,
)


def test_takes_the_first_readable_valid_time_zone(tmp_path):
	missing = tmp_path / "missing.toml"
	broken = tmp_path / "broken.toml"
	broken.write_text("time_zone_string = [")
	bad_zone = tmp_path / "bad.toml"
	bad_zone.write_text('time_zone_string = "Pacific Time"\n')
	good = tmp_path / "good.toml"
	good.write_text('name = "BTU Scheduler Daemon"\ntime_zone_string = "America/Los_Angeles"\n')
	zone, source = original_time_zone((missing, broken, bad_zone, good))
	assert zone == "America/Los_Angeles" and str(good) in source


def test_explains_why_there_is_none(tmp_path):
	bad_zone = tmp_path / "bad.toml"
	bad_zone.write_text('time_zone_string = "Pacific Time"\n')
	zone, reason = original_time_zone((bad_zone,))
	assert zone is None and "Unknown time zone 'Pacific Time'" in reason
	assert original_time_zone((tmp_path / "none.toml",)) == (
		None,
		"no original BTU daemon configuration file found",
	)


def test_socket_path_of_the_original_toml(tmp_path):
	none = tmp_path / "none.toml"
	none.write_text('time_zone_string = "UTC"\n')
	with_path = tmp_path / "with.toml"
	with_path.write_text('socket_path = "/tmp/btu_scheduler.sock"\n')
	assert original_socket_path((tmp_path / "missing.toml", none, with_path)) == (
		"/tmp/btu_scheduler.sock",
		with_path,
	)
	assert original_socket_path((none,)) == (None, None)


class StandIn:
	"""A Unix socket that answers each connection with fixed bytes, as the original daemon answers a ping."""

	def __init__(self, path, answer: bytes):
		self.path, self.answer = path, answer
		self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		self.server.bind(path)
		self.server.listen(4)
		self.thread = threading.Thread(target=self.serve, daemon=True)
		self.thread.start()

	def serve(self):
		while True:
			try:
				conn, _ = self.server.accept()
			except OSError:
				return
			with conn:
				conn.recv(65536)
				conn.sendall(self.answer)

	def close(self):
		self.server.close()
		self.thread.join(5)


def test_probe_tells_who_answers_on_a_socket(workdir, start_daemon, daemon_config):
	path = os.path.join(workdir, "old.sock")
	assert probe_socket(path)[0] == NOTHING
	stand_in = StandIn(path, b"pong")  # what the original daemon writes, without a newline, then closes
	try:
		assert probe_socket(path) == (ORIGINAL_DAEMON, "pong")
	finally:
		stand_in.close()
	os.unlink(path)
	stand_in = StandIn(path, b"HTTP/1.1 400 Bad Request\r\n")
	try:
		assert probe_socket(path)[0] == SOMETHING_ELSE
	finally:
		stand_in.close()
	start_daemon()  # BTU's own daemon, on its own socket
	kind, said = probe_socket(daemon_config.socket_path)
	assert kind == BTU_DAEMON and said, said


def test_environment_name_joins_the_subject_prefix():
	assert subject_prefix_with_environment(None, "PROD") == f"{DEFAULT_SUBJECT_PREFIX} (PROD)"
	assert subject_prefix_with_environment("[ERP]", " TEST ") == "[ERP] (TEST)"
	assert subject_prefix_with_environment("[ERP] (TEST)", "TEST") is None  # already there
	assert subject_prefix_with_environment("[ERP]", "") is None


def test_email_account_from_the_original_smtp_settings():
	values, lines = email_account_values(
		{
			"send_email_via": "SMTP",
			"email_server": "smtp.example.com",
			"email_server_port": "587",
			"email_auth_username": "erp@example.com",
			"email_encryption": "STARTTLS",
		}
	)
	assert values == {
		"email_id": "erp@example.com",
		"email_account_name": "BTU erp@example.com",
		"enable_outgoing": 1,
		"enable_incoming": 0,
		"smtp_server": "smtp.example.com",
		"smtp_port": "587",
		"use_tls": 1,
		"use_ssl_for_outgoing": 0,
	}
	assert "smtp.example.com:587" in lines[0]
	ssl, _ = email_account_values(
		{
			"email_server": "mail.example.com",
			"email_auth_username": "a@example.com",
			"email_encryption": "SSL",
		}
	)
	assert (ssl["use_tls"], ssl["use_ssl_for_outgoing"]) == (0, 1)
	values, lines = email_account_values(
		{"send_email_via": "Mandrill", "mandrill_from_email_address": "m@x.com"}
	)
	assert values is None and "smtp.mandrillapp.com" in lines[0] and "m@x.com" in lines[0]
	values, lines = email_account_values({"send_email_via": "SMTP", "email_server": "smtp.example.com"})
	assert values is None and "incomplete" in lines[0]
	assert email_account_values({}) == (None, [])


def test_task_recipients_merge_into_a_schedules_like_version_13():
	task = [
		{
			"email_address": "ops@example.com",
			"email_on_start": 0,
			"email_on_success": 1,
			"email_on_error": 1,
			"email_on_timeout": 0,
		},
		{
			"email_address": "Boss@Example.com",
			"email_on_start": 0,
			"email_on_success": 0,
			"email_on_error": 1,
			"email_on_timeout": 1,
		},
		{"email_address": " ", "email_on_error": 1},
	]
	schedule = [
		{
			"name": "r1",
			"email_address": "boss@example.com",
			"email_on_start": 1,
			"email_on_success": 0,
			"email_on_error": 0,
			"email_on_timeout": 0,
		},
	]
	added, raised = merge_recipients(task, schedule)
	assert added == [
		{
			"email_address": "ops@example.com",
			"email_on_start": 0,
			"email_on_success": 1,
			"email_on_error": 1,
			"email_on_timeout": 0,
		}
	]
	assert raised == [{"name": "r1", "email_on_error": 1, "email_on_timeout": 1}]
	assert merge_recipients(task[:1], added) == ([], [])


def test_a_pending_run_later_request_becomes_a_run_function_command():
	import ast
	import shlex

	pending = {
		"uid": "abc",
		"short_name": "nightly",
		"target_queue": "long",
		"not_before_time": "2031-01-01T00:00:00",
		"not_before_timestamp": "1924992000",
		"path_to_function": "my_app.tasks.rebuild",
		"arguments": '{"full": true, "name": "it\'s $HOME", "n": null, "xs": [1, 2.5, "\\u00e9"]}',
		"status": "pending",
	}
	line = run_later_command("site1.localhost", pending)
	words = shlex.split(line)
	assert words[:6] == ["bench", "--site", "site1.localhost", "execute", "btu.api.run_function", "--kwargs"]
	# bench execute evaluates --kwargs as a Python literal
	assert ast.literal_eval(words[6]) == {
		"function_path": "my_app.tasks.rebuild",
		"arguments": {"full": True, "name": "it's $HOME", "n": None, "xs": [1, 2.5, "\u00e9"]},
		"at": "2031-01-01T00:00:00+00:00",
		"queue": "long",
	}
	past = run_later_command(
		"s", pending | {"not_before_timestamp": "1600000000", "arguments": "", "target_queue": ""}
	)
	assert ast.literal_eval(shlex.split(past)[6]) == {"function_path": "my_app.tasks.rebuild"}  # due: now
