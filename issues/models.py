from __future__ import annotations

from email.utils import formataddr
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from monitor_site.emails import one_line

# First path segments that belong to other parts of the site; a publication slug may not
# take one of them, or its archive would hide (or be hidden by) that page.
RESERVED_SLUGS = frozenset(
    {
        "subscribe",
        "unsubscribe",
        "preferences",
        "contact",
        "search",
        "admin",
        "anymail",
        "healthz",
        "static",
        "media",
        "feed",
        "feeds",
        "join",
    }
)


def validate_publication_slug(value: str) -> None:
    if value.lower() in RESERVED_SLUGS:
        raise ValidationError(
            "%(value)s is a reserved address on this site; choose another slug.",
            params={"value": value},
            code="reserved",
        )


class Publication(models.Model):
    """A newsletter title (*The Monitor*), with its sender, publisher and footer details."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True, validators=[validate_publication_slug])
    description = models.TextField(blank=True)
    sender_name = models.CharField(max_length=200, blank=True)
    sender_email = models.EmailField(blank=True)
    reply_to = models.EmailField(blank=True)
    publisher_name = models.CharField(max_length=200, blank=True)
    contact_email = models.EmailField(blank=True)
    contact_fax = models.CharField(max_length=60, blank=True)
    contact_postal_address = models.CharField(max_length=300, blank=True)
    notice = models.TextField(
        blank=True, help_text="Copyright and redistribution notice shown under every issue."
    )
    list_id_domain = models.CharField(
        max_length=200, blank=True, help_text="Domain part of the List-Id header."
    )
    messages_per_second = models.PositiveIntegerField(
        null=True, blank=True, help_text="Delivery rate limit; empty for none."
    )
    requires_approval = models.BooleanField(
        default=False, help_text="Confirmed subscription requests wait for staff approval."
    )
    # Legacy readers invited to move to email who have not answered are reminded twice,
    # this many days after the invitation; empty for no reminder.
    invitation_first_reminder_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        default=7,
        help_text="Days after the invitation to email the first reminder; empty for none.",
    )
    invitation_second_reminder_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        default=21,
        help_text="Days after the invitation to email the second reminder; empty for none.",
    )
    # Off unless the publisher chooses them: the ESP then adds a pixel and rewrites links,
    # and each open and click of a reader is recorded (kept RETAIN_EVENTS_DAYS).
    track_opens = models.BooleanField(
        default=False,
        help_text="Ask the email service to record when readers open an issue (a pixel).",
    )
    track_clicks = models.BooleanField(
        default=False,
        help_text="Ask the email service to record the links readers follow (rewritten links).",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("issues:archive", kwargs={"pub": self.slug})

    def clean(self) -> None:
        first, second = self.invitation_first_reminder_days, self.invitation_second_reminder_days
        if first is not None and second is not None and second <= first:
            raise ValidationError(
                {"invitation_second_reminder_days": "Make it later than the first reminder."}
            )
        if 0 in (first, second):
            raise ValidationError("A reminder goes at least one day after the invitation.")

    @property
    def invitation_reminder_days(self) -> list[int]:
        """The days after an invitation on which reminders go, in order."""
        days = (self.invitation_first_reminder_days, self.invitation_second_reminder_days)
        return sorted(d for d in days if d)

    @property
    def from_address(self) -> str:
        """The publication as sender (`The Monitor <monitor@…>`), else DEFAULT_FROM_EMAIL."""
        if not self.sender_email:
            return settings.DEFAULT_FROM_EMAIL
        return formataddr((one_line(self.sender_name or self.name), self.sender_email))

    @property
    def reply_to_addresses(self) -> list[str]:
        """Where readers' answers go: the Reply-To address, else the contact address."""
        address = self.reply_to or self.contact_email
        return [address] if address else []

    @property
    def list_id(self) -> str:
        """The List-Id header value: `The Monitor <monitor.example.org>` (RFC 2919).

        The domain is `list_id_domain`, else the host of SITE_URL; the slug is put in front
        of it unless the domain already starts with it."""
        domain = self.list_id_domain or urlsplit(settings.SITE_URL).hostname or "localhost"
        domain = domain.strip().strip(".").lower()
        if not domain.startswith(f"{self.slug}."):
            domain = f"{self.slug}.{domain}"
        name = one_line(self.name).replace('"', "").replace("<", "").replace(">", "")
        return f"{name} <{domain}>"


class MastheadMember(models.Model):
    class Role(models.TextChoices):
        SENIOR_ANALYST = "senior_analyst", "Senior analyst"
        ANALYST = "analyst", "Analyst"

    publication = models.ForeignKey(Publication, on_delete=models.CASCADE, related_name="masthead")
    name = models.CharField(max_length=200)
    role = models.CharField(max_length=20, choices=Role.choices)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["publication", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["publication", "name"], name="masthead_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_role_display()})"


class Volume(models.Model):
    publication = models.ForeignKey(Publication, on_delete=models.CASCADE, related_name="volumes")
    number = models.PositiveIntegerField()
    year = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["publication", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["publication", "number"], name="volume_unique_number")
        ]

    def __str__(self) -> str:
        return f"{self.publication} Volume {self.number}"


class IssueQuerySet(models.QuerySet):
    def sent(self) -> IssueQuerySet:
        return self.filter(status=Issue.Status.SENT)

    def published(self) -> IssueQuerySet:
        """What the public archive shows: sent issues of active publications."""
        return self.sent().filter(publication__active=True)

    def in_publication(self, publication: Publication) -> IssueQuerySet:
        return self.filter(publication=publication)

    def cited(self, slug: str, volume: int, number: int) -> Issue:
        """The issue cited as publication slug, volume and number; Issue.DoesNotExist
        names the first of the three that does not exist."""
        issue = (
            self.select_related("publication", "volume")
            .filter(publication__slug=slug, volume__number=volume, number=number)
            .first()
        )
        if issue is not None:
            return issue
        publication = Publication.objects.filter(slug=slug).first()
        if publication is None:
            raise Issue.DoesNotExist(f"No publication with the slug {slug!r}.")
        if not publication.volumes.filter(number=volume).exists():
            raise Issue.DoesNotExist(f"{publication.name} has no volume {volume}.")
        raise Issue.DoesNotExist(f"{publication.name}, Volume {volume} has no issue {number}.")


class Issue(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        APPROVED = "approved", "Approved"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled"

    publication = models.ForeignKey(Publication, on_delete=models.PROTECT, related_name="issues")
    volume = models.ForeignKey(Volume, on_delete=models.PROTECT, related_name="issues")
    number = models.PositiveIntegerField()
    date = models.DateField(null=True, blank=True)
    title = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    source_hash = models.CharField(
        max_length=64,
        blank=True,
        editable=False,
        help_text="SHA-256 of the archive file this issue was imported from.",
    )

    objects = IssueQuerySet.as_manager()

    # Statuses in which the content may still change. Once approved, what an editor
    # approved is what goes out: changing it means returning the issue to draft first.
    EDITABLE_STATUSES = frozenset({Status.DRAFT, Status.IN_REVIEW})

    class Meta:
        ordering = ["-volume__number", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["volume", "number"], name="issue_unique_number")
        ]
        indexes = [models.Index(fields=["publication", "status", "date"])]
        permissions = [
            ("submit_issue", "Can submit an issue for review"),
            ("approve_issue", "Can approve an issue or return it to draft"),
            ("send_issue", "Can schedule, send and cancel an issue"),
        ]

    def __str__(self) -> str:
        return f"{self.publication.name}, Volume {self.volume.number}, Issue {self.number}"

    def get_absolute_url(self) -> str:
        return reverse(
            "issues:issue",
            kwargs={
                "pub": self.publication.slug,
                "volume": self.volume.number,
                "number": self.number,
            },
        )

    def clean(self) -> None:
        if (
            self.volume_id
            and self.publication_id
            and self.volume.publication_id != self.publication_id
        ):
            raise ValidationError({"volume": "This volume belongs to another publication."})

    @property
    def is_editable(self) -> bool:
        """Content (articles, title, date) may change only in draft or in review."""
        return self.status in self.EDITABLE_STATUSES

    @property
    def display_title(self) -> str:
        return self.title or f"Volume {self.volume.number}, Issue {self.number}"

    @classmethod
    def next_number(cls, volume: Volume) -> int:
        """The number the next issue of `volume` should take: one past the highest."""
        highest = cls.objects.filter(volume=volume).aggregate(n=models.Max("number"))["n"]
        return (highest or 0) + 1


class Article(models.Model):
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="articles")
    position = models.PositiveIntegerField(default=0)
    headline = models.CharField(max_length=300, blank=True)
    slug = models.SlugField(max_length=80, blank=True)
    body = models.TextField(help_text="Markdown.")
    body_html = models.TextField(
        blank=True, editable=False, help_text="The body rendered and sanitized; kept in step."
    )
    summary = models.TextField(blank=True)
    authors = models.CharField(max_length=300, blank=True)
    regions = models.CharField(max_length=300, blank=True, help_text="Comma-separated tags.")

    class Meta:
        ordering = ["issue", "position", "id"]

    def __str__(self) -> str:
        return self.headline or f"Article {self.position}"

    def save(self, *args, **kwargs) -> None:
        # The rendered body is a pure function of the Markdown: keep them in step here so
        # that no path (admin, import, shell) can store one without the other.
        from issues.markdown import render_markdown

        self.body_html = render_markdown(self.body)
        if "update_fields" in kwargs and kwargs["update_fields"] is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "body_html"}
        super().save(*args, **kwargs)

    @property
    def region_list(self) -> list[str]:
        return [r.strip() for r in self.regions.split(",") if r.strip()]


class IssueEvent(models.Model):
    """One status change of an issue: who, when, from, to, and why."""

    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=20, choices=Issue.Status.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=Issue.Status.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    at = models.DateTimeField(auto_now_add=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["issue", "at", "id"]

    def __str__(self) -> str:
        return f"{self.issue}: {self.from_status or '-'} -> {self.to_status}"
