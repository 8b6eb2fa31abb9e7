"""The demo readers of `load_demo`: 25 people, as the importer makes them.

Twenty read by email (confirmed, one of them in plain text, five also take *Fortnight in
Review*), one of whom bounced and is on the suppression list; five are legacy readers
still on fax or paper, offline with their join codes. They go through
`subscribers_import` and `suppression_add` like a real list, so a second run matches
everyone again and changes nothing. Every address is at example.org, example.com or
example.net (RFC 2606), so nothing reaches a real mailbox.
"""

from __future__ import annotations

from issues.models import Publication
from subscriptions.imports import ImportReport, subscribers_import
from subscriptions.models import Subscriber, Subscription, Suppression
from subscriptions.services import suppression_add

EMAIL_READERS = [
    ("anna.kowalska@example.org", "Anna Kowalska", "Warsaw Institute"),
    ("ben.okafor@example.com", "Ben Okafor", "Atlantic Council"),
    ("carla.mendes@example.net", "Carla Mendes", ""),
    ("dmitri.volkov@example.org", "Dmitri Volkov", "Carnegie Moscow"),
    ("elena.petrova@example.org", "Elena Petrova", "Kennan Institute"),
    ("frank.weber@example.com", "Frank Weber", "SWP Berlin"),
    ("grace.lee@example.net", "Grace Lee", ""),
    ("hiro.tanaka@example.org", "Hiro Tanaka", "JIIA"),
    ("ines.garcia@example.com", "Inés García", "Real Instituto Elcano"),
    ("jonas.berg@example.net", "Jonas Berg", "FOI"),
    ("katya.ivanenko@example.org", "Katya Ivanenko", "Razumkov Centre"),
    ("liam.obrien@example.com", "Liam O'Brien", "Trinity College"),
    ("marta.nowak@example.net", "Marta Nowak", ""),
    ("nikos.pappas@example.org", "Nikos Pappas", "ELIAMEP"),
    ("olga.sorokina@example.com", "Olga Sorokina", "Library of Congress"),
    ("pieter.dejong@example.net", "Pieter de Jong", "Clingendael"),
    ("quinn.harper@example.org", "Quinn Harper", "State Department"),
    ("rosa.bianchi@example.com", "Rosa Bianchi", "ISPI"),
    ("sam.turner@example.net", "Sam Turner", ""),
    ("tomas.novak@example.org", "Tomáš Novák", "Charles University"),
]
PLAIN_TEXT = "olga.sorokina@example.com"
BOUNCED = "sam.turner@example.net"
FORTNIGHT_READERS = EMAIL_READERS[:5]

FAX_READERS = [
    ("Ministry of Foreign Affairs, Press Office", "+1 202 555 0143"),
    ("Office of Senator Whitfield", "+1 202 555 0178"),
    ("Baltic News Desk", "+46 8 555 0190"),
]
POSTAL_READERS = [
    ("Margaret Ellison", "12 Lindens Road\nOxford OX2 6QA\nUnited Kingdom"),
    ("Reading Room, Hoover Library", "434 Galvez Mall\nStanford CA 94305"),
]


def _rows(people: list[dict[str, str]]) -> list[tuple[int, dict[str, str]]]:
    return list(enumerate(people, start=1))


def load_readers(monitor: Publication, fortnight: Publication) -> list[ImportReport]:
    """The demo readers (module docstring); the importer's reports, one per list."""
    email = [{"email": e, "name": n, "organization": o} for e, n, o in EMAIL_READERS]
    reports = [
        subscribers_import(rows=_rows(email), publication=monitor, confirmed=True, form="demo"),
        subscribers_import(
            rows=_rows([p for p in email if p["email"] in {e for e, *_ in FORTNIGHT_READERS}]),
            publication=fortnight,
            confirmed=True,
            form="demo",
        ),
        subscribers_import(
            rows=_rows([{"name": n, "fax": f} for n, f in FAX_READERS]),
            publication=monitor,
            source=Subscriber.Source.LEGACY_FAX,
            form="demo",
        ),
        subscribers_import(
            rows=_rows([{"name": n, "postal_address": a} for n, a in POSTAL_READERS]),
            publication=monitor,
            source=Subscriber.Source.LEGACY_POSTAL,
            form="demo",
        ),
    ]
    Subscription.objects.filter(subscriber__email=PLAIN_TEXT).update(
        format=Subscription.Format.TEXT
    )
    suppression_add(email=BOUNCED, reason=Suppression.Reason.BOUNCED, source="demo")
    return reports
