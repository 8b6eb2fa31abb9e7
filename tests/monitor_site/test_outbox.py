from __future__ import annotations

import email
import email.policy

from django.core.mail import EmailMultiAlternatives

from monitor_site.outbox import OutboxBackend


def test_outbox_writes_each_message_as_one_parseable_eml_file(tmp_path):
    backend = OutboxBackend(outbox_dir=tmp_path)
    messages = []
    for n in range(2):
        msg = EmailMultiAlternatives(
            subject=f"Issue {n} — Grüße",
            body="Plain text body\n",
            from_email="The Monitor <monitor@example.org>",
            to=[f"reader{n}@example.org"],
            headers={"List-Id": "The Monitor <monitor.example.org>"},
        )
        msg.attach_alternative("<p>HTML body</p>", "text/html")
        messages.append(msg)

    assert backend.send_messages(messages) == 2

    files = sorted(tmp_path.glob("*.eml"))
    assert len(files) == 2
    assert not list(tmp_path.glob(".*.tmp"))
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.strict)
    assert parsed.defects == []
    assert parsed["Subject"] in {"Issue 0 — Grüße", "Issue 1 — Grüße"}
    assert parsed["List-Id"] == "The Monitor <monitor.example.org>"
    assert parsed.get_body(("plain",)).get_content() == "Plain text body\n"
    assert parsed.get_body(("html",)).get_content().strip() == "<p>HTML body</p>"


def test_outbox_skips_messages_without_recipients(tmp_path):
    backend = OutboxBackend(outbox_dir=tmp_path)
    assert backend.send_messages([EmailMultiAlternatives(subject="x", body="y")]) == 0
    assert list(tmp_path.iterdir()) == []
