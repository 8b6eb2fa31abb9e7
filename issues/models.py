from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse


class Publication(models.Model):
    """A newsletter title (*The Monitor*), with its sender, publisher and footer details."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
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
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("issues:archive", kwargs={"pub": self.slug})


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

    objects = IssueQuerySet.as_manager()

    class Meta:
        ordering = ["-volume__number", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["volume", "number"], name="issue_unique_number")
        ]
        indexes = [models.Index(fields=["publication", "status", "date"])]

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


class Article(models.Model):
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="articles")
    position = models.PositiveIntegerField(default=0)
    headline = models.CharField(max_length=300, blank=True)
    slug = models.SlugField(max_length=80, blank=True)
    body = models.TextField(help_text="Markdown.")
    summary = models.TextField(blank=True)
    authors = models.CharField(max_length=300, blank=True)
    regions = models.CharField(max_length=300, blank=True, help_text="Comma-separated tags.")

    class Meta:
        ordering = ["issue", "position", "id"]

    def __str__(self) -> str:
        return self.headline or f"Article {self.position}"


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
