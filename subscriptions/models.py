from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower

from issues.models import Publication


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

    class Meta:
        ordering = ["email"]
        constraints = [models.UniqueConstraint(Lower("email"), name="subscriber_unique_email")]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs) -> None:
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)


class SubscriptionQuerySet(models.QuerySet):
    def active(self) -> SubscriptionQuerySet:
        return self.filter(status=Subscription.Status.ACTIVE)

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
