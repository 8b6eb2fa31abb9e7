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


# The search bench's archive: articles of ~300 words drawn from a Zipf-like vocabulary,
# with the query's three words in given shares of them, so that the query's hits are a
# known, realistic fraction (about 1 in 100 articles holds all three).
SEARCH_QUERY = "russian oil sanctions"
SEARCH_SHARES = {"russian": 0.4, "oil": 0.2, "sanctions": 0.15}
REGIONS = ("Russia", "Ukraine", "Belarus", "Caucasus", "Central Asia", "Baltics", "Moldova")
_SYLLABLES = "ka lo mir va do ne sta ri po gra zov ti ber an el mon tu sha kor vi len ost pra"
_SYLLABLES += " dal mu gen tor is lav ek ru sen bal dor"


def make_search_archive(count: int, *, per_issue: int = 5) -> Publication:
    """`count` articles in sent issues of a publication of their own ("Bench Archive"),
    `per_issue` to an issue, a volume a year from 1995, issues on weekdays."""
    import random
    from datetime import date, timedelta

    from issues.models import Article, Volume

    rng = random.Random(18)
    syllables = _SYLLABLES.split()
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(6000)]
    weights = [1 / (rank + 1) for rank in range(len(words))]
    publication, _ = Publication.objects.get_or_create(
        slug="bench-archive", defaults={"name": "Bench Archive"}
    )
    issues_needed = -(-count // per_issue)
    per_year = 250
    day = date(1995, 1, 2)
    volumes = {}
    issues = []
    for n in range(issues_needed):
        year_index = n // per_year
        if year_index not in volumes:
            volumes[year_index] = Volume.objects.create(
                publication=publication, number=year_index + 1, year=1995 + year_index
            )
        while day.weekday() > 4:
            day += timedelta(days=1)
        issues.append(
            Issue(
                publication=publication,
                volume=volumes[year_index],
                number=n % per_year + 1,
                date=day,
                status=Issue.Status.SENT,
            )
        )
        day += timedelta(days=1)
    issues = Issue.objects.bulk_create(issues, batch_size=1000)

    def body() -> str:
        text = rng.choices(words, weights, k=300)
        for word, share in SEARCH_SHARES.items():
            if rng.random() < share:
                text.insert(rng.randrange(len(text)), word)
        sentences = [" ".join(text[i : i + 15]).capitalize() + "." for i in range(0, 300, 15)]
        return "\n\n".join(" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5))

    articles = (
        Article(
            issue=issues[n // per_issue],
            position=n % per_issue,
            headline=" ".join(rng.choices(words, weights, k=6)).capitalize(),
            body=body(),
            regions=", ".join(rng.sample(REGIONS, rng.randint(1, 2))),
        )
        for n in range(count)
    )
    Article.objects.bulk_create(articles, batch_size=1000)  # the database indexes them
    analyze()
    return publication
