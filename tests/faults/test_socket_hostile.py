"""Hostile and broken input on the daemon's socket: every request gets a clear refusal, the daemon
keeps serving (a ping afterwards answers) and its memory stays bounded."""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from btu.contracts import protocol

from .harness import SITE, STATS, raw_request, scale, wait_for

pytestmark = pytest.mark.faults
MiB = 1024 * 1024

# category -> what the refusal must say
REASONS = {
	"not_utf8": r"not UTF-8",
	"nul": r"NUL byte",
	"empty": r"empty request",
	"bad_json": r"not valid JSON",
	"deep_json": r"not valid JSON|too deeply nested|nested",
	"huge_number": r"not valid JSON|number|digits",
	"not_object": r"must be a JSON object",
	"unknown_field": r"unknown field",
	"type_not_string": r"'request_type' must be a string",
	"unknown_type": r"unknown request_type",
	"content_type": r"'request_content' must be a string",
	"content_missing": r"needs 'request_content'",
	"content_not_name": r"not a schedule name",
	"site_type": r"'site' must be a non-empty string",
	"unknown_site": r"unknown site",
	"oversized": r"exceeds 65536 bytes",
	"slow": r"not completed within 5 s",
	"busy": r"daemon busy",
}


def generate(rng: random.Random, count: int) -> list[tuple[str, bytes]]:
	"""``count`` hostile requests (category, bytes), each a line ending with a newline."""
	good = {"request_type": "create_task_schedule", "request_content": "TS-000001", "site": SITE}
	weird_values = [0, -1, 1.5, True, None, [], [1, 2], {}, {"a": 1}, "x" * 300]
	makers = {
		"not_utf8": lambda: (
			b'{"request_type": "ping\xff\xfe"}' + bytes(rng.randrange(128, 256) for _ in range(8))
		),
		"nul": lambda: json.dumps({"request_type": "ping"}).encode()[:5] + b"\x00" + b'"ping"}',
		"empty": lambda: rng.choice([b"", b"   ", b"\t \r"]),
		"bad_json": lambda: rng.choice(
			[
				json.dumps(good).encode()[: rng.randrange(1, 40)],
				b"{'request_type': 'ping'}",
				b'{"request_type": "ping",}',
				b"ping",
				b"{" * 3,
				bytes(rng.randrange(32, 127) for _ in range(rng.randrange(1, 200))) + b"}",
				b'{"request_type": NaN}x',
				b"[1, 2",
				b'"unterminated',
			]
		),
		"deep_json": lambda: b"[" * rng.randrange(5000, 60000) + b"]" * 10,
		"huge_number": lambda: b'{"request_type": ' + b"9" * rng.randrange(5000, 60000) + b"}",
		"not_object": lambda: rng.choice(
			[b"[]", b"1", b'"ping"', b"null", b"true", b'[{"request_type": "ping"}]']
		),
		"unknown_field": lambda: json.dumps(
			{**good, rng.choice(["__class__", "eval", "x", "pickle"]): 1}
		).encode(),
		"type_not_string": lambda: json.dumps({"request_type": rng.choice(weird_values[:-1])}).encode(),
		"unknown_type": lambda: json.dumps(
			{
				"request_type": rng.choice(
					["PING", "shutdown", "exec", "__import__('os')", "drop", "", "ping ", "x" * 500]
				)
			}
		).encode(),
		"content_type": lambda: json.dumps(
			{**good, "request_content": rng.choice([0, 1.5, True, [], ["TS-1"], {"name": "TS-1"}])}
		).encode(),
		"content_missing": lambda: json.dumps(
			{
				"request_type": rng.choice(["create_task_schedule", "cancel_task_schedule"]),
				"site": SITE,
				**rng.choice(
					[{}, {"request_content": ""}, {"request_content": "   "}, {"request_content": None}]
				),
			}
		).encode(),
		"content_not_name": lambda: json.dumps(
			{
				**good,
				"request_content": rng.choice(
					["x" * 141, "TS\n1", "TS\x01", "\x1b[31mred", "TS-\ud800", "\udcff" * 3, "a\tb"]
				),
			}
		).encode(),
		"site_type": lambda: json.dumps(
			{"request_type": "ping", "site": rng.choice([0, [], {}, "", "   ", "s" * 300, True])}
		).encode(),
		"unknown_site": lambda: json.dumps(
			{
				**good,
				"site": rng.choice(["other.localhost", "../../etc", "'; DROP DATABASE x; --", "\ud800site"]),
			}
		).encode(),
	}
	categories = list(makers)
	out = []
	for i in range(count):
		category = categories[i % len(categories)] if i < len(categories) * 2 else rng.choice(categories)
		out.append((category, makers[category]() + b"\n"))
	return out


def check_reply(category: str, reply) -> str | None:
	"""None when the reply is the expected refusal, else what is wrong."""
	if not isinstance(reply, dict):
		return f"{category}: no reply"
	if reply.get("ok") is not False:
		return f"{category}: ok is {reply.get('ok')!r}: {reply}"
	message = reply.get("message")
	if not isinstance(message, str) or not re.search(REASONS[category], message):
		return f"{category}: unexpected reason {message!r}"
	return None


def send_big(path: str, size: int) -> dict | None:
	"""A 10 MB request sent in a thread (the daemon refuses it after 64 KiB) while we read the reply."""
	with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
		sock.settimeout(20)
		sock.connect(path)

		def push():
			try:
				sock.sendall(b'{"request_type": "ping", "request_content": "' + b"A" * size + b'"}\n')
			except OSError:
				pass

		sender = threading.Thread(target=push)
		sender.start()
		try:
			data = protocol.read_reply_line(sock)
		except OSError:
			data = b""
		sender.join(20)
	return json.loads(data.split(b"\n")[0]) if data.strip() else None


def test_hostile_socket_requests_are_refused_and_the_daemon_keeps_serving(bench):
	rng = random.Random(7)
	daemon = bench.daemon("d")
	path = daemon.socket_path
	time.sleep(1)
	rss_before, threads_before = daemon.rss(), daemon.threads()
	problems: list[str] = []
	count = scale(1000, 10000)
	requests = generate(rng, count)

	with ThreadPoolExecutor(8) as pool:
		replies = list(pool.map(lambda item: raw_request(path, item[1], timeout=15), requests))
	problems += [p for (cat, _), reply in zip(requests, replies) if (p := check_reply(cat, reply))]
	sent = len(requests)

	# 10 MB payloads, binary garbage and NUL bytes in bulk.
	for _ in range(scale(3, 20)):
		problems += [p for p in [check_reply("oversized", send_big(path, 10 * MiB))] if p]
		sent += 1
	for _ in range(scale(3, 20)):
		blob = bytes(rng.randrange(256) for _ in range(rng.randrange(70000, 200000)))
		reply = raw_request(path, blob.replace(b"\n", b"\x00"), timeout=15)
		problems += [p for p in [check_reply("oversized", reply)] if p]
		sent += 1
	assert daemon.request("ping").ok, "ping after the flood of bad requests"

	# Half-sent requests left open, and 500 connections at once: each times out after 5 s (or, beyond
	# the daemon's limits, is told it is busy); none is left without an answer.
	for _round in range(scale(1, 3)):
		socks = []
		for i in range(500):
			sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
			sock.settimeout(30)
			sock.connect(path)
			sock.sendall(b'{"request_type": "pi' if i % 2 else b"")
			socks.append(sock)
		sent += len(socks)
		answers = []

		def read(sock):
			try:
				data = protocol.read_reply_line(sock)
			except OSError as exc:
				return {"error": str(exc)}
			return json.loads(data.split(b"\n")[0]) if data.strip() else None

		with ThreadPoolExecutor(64) as pool:
			answers = list(pool.map(read, socks))
		for sock in socks:
			sock.close()
		for answer in answers:
			category = "busy" if isinstance(answer, dict) and "busy" in str(answer.get("message")) else "slow"
			problem = check_reply(category, answer)
			if problem:
				problems.append(problem)
		STATS.add(bench.test_name, faults_injected=1)
		pong = protocol.ping(path, timeout=2.0)  # answered within the client's usual timeout
		assert pong.ok, f"ping after 500 concurrent half-sent requests: {pong.message}"

	STATS.add(bench.test_name, bad_inputs_sent=sent)
	assert not problems, f"{len(problems)} of {sent} bad requests got a wrong reply:\n" + "\n".join(
		problems[:30]
	)
	# The daemon is still healthy: it answers, syncs nothing bogus, and its memory is bounded.
	wait_for(lambda: daemon.threads() <= threads_before + 4, 20, what="client threads to finish")
	status = daemon.request("status")
	assert status.ok and status.data["counters"]["socket_errors"] >= sent * 0.9
	grown = daemon.rss() - rss_before
	print(f"[faults] {sent} bad requests; RSS {rss_before / MiB:.1f} MiB -> {daemon.rss() / MiB:.1f} MiB")
	assert grown < 64 * MiB, f"RSS grew by {grown / MiB:.1f} MiB"
	assert daemon.process.alive()
