from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower

from issues.models import Publication


def validate_single_line(value: str) -> None:
    """Names and subjects may end up in mail headers: no line breaks, no control
    characters."""
    if any(not ch.isprintable() for ch in value):
        raise ValidationError("Use a single line of plain text (no line breaks).")


class Subscriber(models.Model):
    """A person; addresses are stored lower-cased and are unique regardless of case."""

    class Source(models.TextChoices):
        WEB = "web", "Web form"
        IMPORT = "import", "Import"
        ADMIN = "admin", "Admin"
        LEGACY_FAX = "legacy-fax", "Legacy fax list"
        LEGACY_POSTAL = "legacy-postal", "Legacy postal list"

    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=200, blank=True)
    organization = models.CharField(max_length=200, blank=True)
    fax = models.CharField(max_length=60, blank=True)
    postal_address = models.TextField(blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.WEB)
    consent_at = models.DateTimeField(null=True, blank=True)
    consent_ip = models.GenericIPAddressField(null=True, blank=True)
    consent_form = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the last confirmation / preferences-link email was claimed: at most one of
    # each per address per CONFIRMATION_INTERVAL, however many requests come in.
    confirmation_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    preferences_sent_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["email"]
        constraints = [models.UniqueConstraint(Lower("email"), name="subscriber_unique_email")]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs) -> None:
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)

    @property
    def is_suppressed(self) -> bool:
        return Suppression.objects.active().filter(email=self.email).exists()


class SubscriptionQuerySet(models.QuerySet):
    def active(self) -> SubscriptionQuerySet:
        return self.filter(status=Subscription.Status.ACTIVE)

    def pending(self) -> SubscriptionQuerySet:
        return self.filter(status=Subscription.Status.PENDING)

    def audience(self, *, publication_id: int) -> SubscriptionQuerySet:
        """Who an issue of the publication goes to (SPEC §7): its active subscriptions
        whose address is not on the suppression list. The fan-out, the report and the
        send page all count this one queryset."""
        suppressed = Suppression.objects.active().values("email")
        return (
            self.active()
            .filter(publication_id=publication_id)
            .exclude(subscriber__email__in=suppressed)
        )

    def awaiting_approval(self) -> SubscriptionQuerySet:
        return self.filter(status=Subscription.Status.AWAITING_APPROVAL)

    def open(self) -> SubscriptionQuerySet:
        """Not ended: pending, awaiting approval or active."""
        return self.filter(status__in=Subscription.OPEN_STATUSES)

    def deliverable(self) -> SubscriptionQuerySet:
        """Active subscriptions whose address is not on the suppression list."""
        suppressed = Suppression.objects.active().filter(email=models.OuterRef("subscriber__email"))
        return self.active().exclude(models.Exists(suppressed))


class Subscription(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACTIVE = "active", "Active"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"
        # Confirmed by the reader; the publication requires staff approval first.
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"

    OPEN_STATUSES = (Status.PENDING, Status.AWAITING_APPROVAL, Status.ACTIVE)

    class Format(models.TextChoices):
        HTML = "html", "HTML"
        TEXT = "text", "Plain text"

    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, related_name="subscriptions"
    )
    publication = models.ForeignKey(
        Publication, on_delete=models.CASCADE, related_name="subscriptions"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    format = models.CharField(max_length=10, choices=Format.choices, default=Format.HTML)
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber", "publication"], name="subscription_unique_pair"
            )
        ]
        indexes = [models.Index(fields=["publication", "status"])]

    def __str__(self) -> str:
        return f"{self.subscriber} -> {self.publication}"

    @property
    def export_status(self) -> str:
        """The status as SPEC §3 names it: a request awaiting approval is still pending."""
        if self.status == self.Status.AWAITING_APPROVAL:
            return self.Status.PENDING
        return self.status


class SubscriptionRequest(Subscription):
    """Subscriptions that readers confirmed and staff must approve or reject."""

    class Meta:
        proxy = True
        verbose_name = "subscription request"
        verbose_name_plural = "subscription requests"


class SubscriptionEvent(models.Model):
    """One status change of a subscription: from, to, when, why and by whom."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=20, choices=Subscription.Status.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=Subscription.Status.choices)
    at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(max_length=300, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["subscription", "at", "id"]

    def __str__(self) -> str:
        return f"{self.subscription}: {self.from_status or '-'} -> {self.to_status}"


class SuppressionQuerySet(models.QuerySet):
    def active(self) -> SuppressionQuerySet:
        return self.filter(lifted_at__isnull=True)


class Suppression(models.Model):
    """An address that no send may reach (hard bounce, complaint, staff decision).

    Lifting keeps the row for the record; only unlifted rows suppress."""

    class Reason(models.TextChoices):
        BOUNCED = "bounced", "Hard bounce"
        COMPLAINED = "complained", "Spam complaint"
        INVALID = "invalid", "Invalid address"
        BLOCKED = "blocked", "Blocked by the receiver"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed at the ESP"
        MANUAL = "manual", "Added by staff"

    email = models.EmailField(max_length=254)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    source = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_note = models.TextField(blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    objects = SuppressionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                "email",
                condition=models.Q(lifted_at__isnull=True),
                name="suppression_unique_active_email",
            )
        ]
        indexes = [models.Index(fields=["email"])]

    def __str__(self) -> str:
        return f"{self.email} ({self.get_reason_display()})"

    def save(self, *args, **kwargs) -> None:
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)


class ContactMessage(models.Model):
    """A question or comment sent through the contact page."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ANSWERED = "answered", "Answered"

    publication = models.ForeignKey(
        Publication, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    name = models.CharField(max_length=200)
    email = models.EmailField(max_length=254)
    subject = models.CharField(max_length=200)
    body = models.TextField(max_length=5000)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.subject} ({self.email})"
