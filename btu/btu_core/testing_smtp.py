"""A tiny SMTP server for BTU's tests (frappe-free): it accepts every message on 127.0.0.1 and keeps
it, so that a test can check what Frappe really sent over SMTP (*Send test email*, run emails)."""

from __future__ import annotations

import email
import email.policy
import socketserver
import threading
from dataclasses import dataclass, field


@dataclass
class Received:
	sender: str
	recipients: list[str]
	data: bytes

	@property
	def message(self) -> email.message.EmailMessage:
		return email.message_from_bytes(self.data.replace(b"\r\n", b"\n"), policy=email.policy.default)

	@property
	def subject(self) -> str:
		return str(self.message["Subject"] or "")


@dataclass
class _State:
	messages: list[Received] = field(default_factory=list)
	lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(socketserver.StreamRequestHandler):
	def reply(self, line: str) -> None:
		self.wfile.write(line.encode() + b"\r\n")
		self.wfile.flush()

	def handle(self) -> None:
		state: _State = self.server.state  # type: ignore[attr-defined]
		sender, recipients = "", []
		self.reply("220 btu-test-smtp ESMTP")
		while True:
			line = self.rfile.readline(65536)
			if not line:
				return
			verb = line.decode("utf-8", "replace").strip().split(" ", 1)[0].upper()
			argument = line.decode("utf-8", "replace").strip()[len(verb) :].strip()
			if verb in ("EHLO", "HELO"):
				self.reply("250-btu-test-smtp")
				self.reply("250 8BITMIME")
			elif verb == "MAIL":
				sender, recipients = argument.partition(":")[2].strip().strip("<>").split(" ")[0], []
				self.reply("250 OK")
			elif verb == "RCPT":
				recipients.append(argument.partition(":")[2].strip().strip("<>"))
				self.reply("250 OK")
			elif verb == "DATA":
				self.reply("354 End data with <CR><LF>.<CR><LF>")
				chunks = []
				while True:
					chunk = self.rfile.readline(1 << 20)
					if not chunk or chunk in (b".\r\n", b".\n"):
						break
					chunks.append(chunk[1:] if chunk.startswith(b"..") else chunk)
				with state.lock:
					state.messages.append(Received(sender, list(recipients), b"".join(chunks)))
				self.reply("250 OK: queued")
			elif verb == "QUIT":
				self.reply("221 Bye")
				return
			elif verb in ("RSET", "NOOP"):
				self.reply("250 OK")
			else:
				self.reply("502 Command not implemented")


class _Server(socketserver.ThreadingTCPServer):
	daemon_threads = True
	allow_reuse_address = True


class SMTPSink:
	"""``with SMTPSink() as sink: ... sink.port ... sink.messages``"""

	def __init__(self, host: str = "127.0.0.1") -> None:
		self._server = _Server((host, 0), _Handler)
		self._server.state = _State()  # type: ignore[attr-defined]
		self.host, self.port = self._server.server_address[:2]
		self._thread = threading.Thread(target=self._server.serve_forever, name="btu-test-smtp", daemon=True)

	@property
	def messages(self) -> list[Received]:
		state: _State = self._server.state  # type: ignore[attr-defined]
		with state.lock:
			return list(state.messages)

	def __enter__(self) -> "SMTPSink":
		self._thread.start()
		return self

	def __exit__(self, *exc: object) -> None:
		self._server.shutdown()
		self._server.server_close()
		self._thread.join(5)
