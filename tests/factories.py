"""The one set of model factories (factory-boy) every test builds its world from."""

from __future__ import annotations

import factory
from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone

from issues.models import Article, Issue, Publication, Volume
from subscriptions.models import Subscriber, Subscription

BODY = """The leadership seems **confused** and worried by the new policy toward
its union partner (Itar-Tass, December 15-16, 1999).

Lukashenka has also been hoping to use the Union as a vehicle. See
[the archive](https://example.org/monitor/) for more.

- one point
- another point
"""


class PublicationFactory(factory.django.DjangoModelFactory):
    """*The Monitor* with a sender, a publisher and a footer, as the seed issue has."""

    class Meta:
        model = Publication
        django_get_or_create = ("slug",)

    name = "The Monitor"
    slug = "monitor"
    sender_name = factory.LazyAttribute(lambda p: p.name)
    sender_email = factory.LazyAttribute(lambda p: f"{p.slug}@example.org")
    reply_to = "pubs@example.org"
    publisher_name = "The Jamestown Foundation"
    contact_email = "pubs@example.org"
    contact_fax = "301-562-8021"
    contact_postal_address = "4516 43rd Street NW, Washington DC 20016"
    notice = "Unauthorized reproduction or redistribution is prohibited."
    list_id_domain = "example.org"


class VolumeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Volume
        django_get_or_create = ("publication", "number")

    publication = factory.SubFactory(PublicationFactory)
    number = 6
    year = 2000


class IssueFactory(factory.django.DjangoModelFactory):
    """An issue with `articles` articles (two by default) of BODY."""

    class Meta:
        model = Issue
        skip_postgeneration_save = True

    volume = factory.SubFactory(VolumeFactory)
    publication = factory.SelfAttribute("volume.publication")
    number = factory.Sequence(lambda n: n + 1)
    status = Issue.Status.DRAFT

    @factory.post_generation
    def articles(issue: Issue, create: bool, extracted: int | None, **kwargs: object) -> None:
        if not create:
            return
        for position in range(2 if extracted is None else extracted):
            ArticleFactory(issue=issue, position=position, headline=f"Headline {position + 1}")


class ArticleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Article

    issue = factory.SubFactory(IssueFactory, articles=0)
    position = 0
    headline = factory.Sequence(lambda n: f"Headline {n + 1}")
    body = BODY


class SubscriberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscriber
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"reader{n}@example.org")
    name = factory.Sequence(lambda n: f"Reader {n}")


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """An active, confirmed subscription (pass `status` for another)."""

    class Meta:
        model = Subscription

    subscriber = factory.SubFactory(SubscriberFactory)
    publication = factory.SubFactory(PublicationFactory)
    status = Subscription.Status.ACTIVE
    confirmed_at = factory.LazyAttribute(
        lambda s: timezone.now() if s.status == Subscription.Status.ACTIVE else None
    )


class StaffFactory(factory.django.DjangoModelFactory):
    """A staff user whose password is "pw"; `groups=["Editors"]` puts them in groups
    that the migrations create, `permissions=["delivery.view_outbox"]` gives them
    permissions by name."""

    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "pw")

    @factory.post_generation
    def groups(user: User, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if create and extracted:
            user.groups.add(*Group.objects.filter(name__in=extracted))
        if create:
            user.save()

    @factory.post_generation
    def permissions(
        user: User, create: bool, extracted: list[str] | None, **kwargs: object
    ) -> None:
        if not (create and extracted):
            return
        for name in extracted:
            app_label, codename = name.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
