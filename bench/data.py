"""The workload: the seed issue, approved, and up to 100,000 active subscribers."""

from __future__ import annotations

import io

from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from delivery.models import Delivery, DeliveryEvent, MessageId, SendJob
from issues.demo import DEMO_DETAILS, SEED
from issues.models import Issue, Publication
from subscriptions.models import Subscriber, Subscription

_audience: dict[int, int] = {}


def migrate() -> None:
    call_command("migrate", verbosity=0, interactive=False)
    call_command("createcachetable", verbosity=0)


def seed_issue() -> Issue:
    """The seed issue imported as the editors would, approved and ready to send."""
    call_command("import_archive", str(SEED), status=Issue.Status.APPROVED, stdout=io.StringIO())
    issue = Issue.objects.select_related("publication").get()
    Publication.objects.filter(pk=issue.publication_id).update(**DEMO_DETAILS)
    return Issue.objects.select_related("publication", "volume").get(pk=issue.pk)


def make_subscribers(publication: Publication, count: int) -> None:
    """`count` confirmed readers of the publication, half of them with a name."""
    now = timezone.now()
    batch = 10_000
    for start in range(0, count, batch):
        subscribers = Subscriber.objects.bulk_create(
            Subscriber(
                email=f"reader{n}@example.org",
                name=f"Reader {n}" if n % 2 else "",
                source=Subscriber.Source.IMPORT,
            )
            for n in range(start, min(start + batch, count))
        )
        Subscription.objects.bulk_create(
            Subscription(
                subscriber=s,
                publication=publication,
                status=Subscription.Status.ACTIVE,
                format=Subscription.Format.HTML,
                confirmed_at=now,
            )
            for s in subscribers
        )
    _audience[publication.pk] = count
    analyze()


def analyze() -> None:
    """Settled tables, as autovacuum leaves them between sends: the workload's rows
    just written (or rewritten by `set_audience`) vacuumed, their statistics fresh."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


def set_audience(publication: Publication, count: int) -> None:
    """Make the first `count` subscriptions active and the rest unsubscribed (writing
    only the rows that change)."""
    if _audience.get(publication.pk) == count:
        return
    subscriptions = Subscription.objects.filter(publication=publication)
    cut = subscriptions.order_by("id").values_list("id", flat=True)[count - 1]
    active, gone = Subscription.Status.ACTIVE, Subscription.Status.UNSUBSCRIBED
    subscriptions.filter(id__lte=cut).exclude(status=active).update(status=active)
    subscriptions.filter(id__gt=cut).exclude(status=gone).update(status=gone)
    _audience[publication.pk] = count
    analyze()


def reset_issue(issue: Issue) -> None:
    """Back to approved with no delivery rows, as if it had never been sent."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                tables = (DeliveryEvent, MessageId, Delivery)
                cursor.execute(f"TRUNCATE {', '.join(t._meta.db_table for t in tables)}")
        else:
            DeliveryEvent.objects.all().delete()
            MessageId.objects.all().delete()
            Delivery.objects.all().delete()
        SendJob.objects.filter(issue=issue).delete()
        Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.APPROVED)
    checkpoint()
    issue.refresh_from_db()


def checkpoint() -> None:
    """Start each run from the same quiet database: the last run's writes flushed and
    its WAL files free for reuse, rather than written out (or new WAL files zeroed)
    while the next run is timed."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
