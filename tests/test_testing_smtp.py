"""The SMTP sink BTU's tests receive Frappe's emails with (btu.btu_core.testing_smtp)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from btu.btu_core.testing_smtp import SMTPSink


def test_the_sink_keeps_what_an_smtp_client_sends():
	message = EmailMessage()
	message["Subject"] = "[BTU] Test email"
	message["From"] = "btu@example.com"
	message["To"] = "ops@example.com"
	message.set_content("hello\n.leading dot\n")
	with SMTPSink() as sink:
		with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
			client.send_message(message)
		(received,) = sink.messages
	assert received.sender == "btu@example.com"
	assert received.recipients == ["ops@example.com"]
	assert received.subject == "[BTU] Test email"
	assert received.message.get_content() == "hello\n.leading dot\n"
