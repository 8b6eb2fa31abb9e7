from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils.crypto import constant_time_compare

from issues.models import Publication
from subscriptions.hashing import address_hash, address_hashes, key_id
from subscriptions.joincodes import join_code_display
from subscriptions.tokens import BadToken


def validate_single_line(value: str) -> None:
    """Names and subjects may end up in mail headers: no line breaks, no control
    characters."""
    if any(not ch.isprintable() for ch in value):
        raise ValidationError("Use a single line of plain text (no line breaks).")


FAX_MIN_DIGITS, FAX_MAX_DIGITS = 7, 15  # a local number without area code; E.164


def fax_key(value: str) -> str:
    """A fax number as it is matched: its digits, with a leading + kept."""
    value = value.strip()
    digits = "".join(ch for ch in value if ch.isdigit())
    return f"+{digits}" if value.startswith("+") and digits else digits


def validate_fax(value: str) -> None:
    """Digits with the usual separators (spaces, dots, dashes, brackets, a leading +);
    anything else (letters, an extension) is refused rather than guessed."""
    if not value.strip():
        return
    body = value.strip().removeprefix("+")
    if any(not (ch.isdigit() or ch in " .-()/") for ch in body):
        raise ValidationError(
            "%(value)s is not a fax number: use digits (a leading + allowed) and spaces, "
            "dots, dashes, slashes or brackets.",
            params={"value": value},
            code="fax",
        )
    digits = len(fax_key(value).lstrip("+"))
    if not FAX_MIN_DIGITS <= digits <= FAX_MAX_DIGITS:
        raise ValidationError(
            "%(value)s is not a fax number: it has %(digits)d digits, not "
            f"{FAX_MIN_DIGITS} to {FAX_MAX_DIGITS}.",
            params={"value": value, "digits": digits},
            code="fax",
        )


def postal_key(value: str) -> str:
    """A postal address as it is matched: whitespace and case folded, then hashed (the
    key has a fixed size and an index)."""
    folded = " ".join(value.split()).casefold()
    return hashlib.sha256(folded.encode()).hexdigest() if folded else ""


class SubscriberQuerySet(models.QuerySet):
    """Rows written in bulk get their stored forms too (see Subscriber.normalize)."""

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for obj in objs:
            obj.normalize()
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs, fields = list(objs), Subscriber.stored_forms(fields)
        if fields & {"email", "fax", "postal_address"}:
            for obj in objs:
                obj.normalize()
        return super().bulk_update(objs, fields, *args, **kwargs)


class Subscriber(models.Model):
    """A person; addresses are stored lower-cased and are unique regardless of case.

    An offline reader (fax or post, from a legacy list) has no address (NULL: several
    may lack one) but a fax number or a postal address, and a personal join code that
    moves them to email at /join/. `fax_key` and `postal_key` are the normalised forms a
    re-import matches on, `email_hash` the keyed hash the suppression list is matched
    on (subscriptions.hashing); `save()` and bulk writes keep them in step."""

    class Source(models.TextChoices):
        WEB = "web", "Web form"
        IMPORT = "import", "Import"
        ADMIN = "admin", "Admin"
        LEGACY_FAX = "legacy-fax", "Legacy fax list"
        LEGACY_POSTAL = "legacy-postal", "Legacy postal list"
        LEGACY_EMAIL = "legacy-email", "Legacy email list"

    # The legacy lists: people who read the publication before this system, by fax, post
    # or an old mailing list. They are invited to move to email, not asked to confirm.
    LEGACY_SOURCES = (Source.LEGACY_FAX, Source.LEGACY_POSTAL, Source.LEGACY_EMAIL)

    email = models.EmailField(max_length=254, null=True, blank=True)
    name = models.CharField(max_length=200, blank=True)
    organization = models.CharField(max_length=200, blank=True)
    fax = models.CharField(max_length=60, blank=True, validators=[validate_fax])
    postal_address = models.TextField(blank=True)
    fax_key = models.CharField(max_length=20, blank=True, editable=False, db_index=True)
    postal_key = models.CharField(max_length=64, blank=True, editable=False, db_index=True)
    email_hash = models.CharField(max_length=64, blank=True, editable=False)
    join_code = models.CharField(max_length=8, null=True, blank=True, unique=True, editable=False)
    # The address typed at /join/ with the code, until the reader confirms it by email.
    join_email = models.EmailField(max_length=254, null=True, blank=True, editable=False)
    join_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.WEB)
    consent_at = models.DateTimeField(null=True, blank=True)
    consent_ip = models.GenericIPAddressField(null=True, blank=True)
    consent_form = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Signed into the link of the latest confirmation email, and replaced when another
    # goes out and when a subscription is confirmed or ended: a confirm link confirms
    # only the request it was sent for. Empty before the first such email.
    confirm_nonce = models.CharField(max_length=32, blank=True, editable=False)

    objects = SubscriberQuerySet.as_manager()

    class Meta:
        ordering = ["email"]
        permissions = [("erase_subscriber", "Can erase a reader's data (GDPR Art. 17)")]
        constraints = [
            # NULLs are distinct: any number of offline readers, one row per address
            models.UniqueConstraint(Lower("email"), name="subscriber_unique_email"),
            models.CheckConstraint(
                condition=~models.Q(email=""), name="subscriber_email_null_not_blank"
            ),
            models.CheckConstraint(
                condition=models.Q(email__isnull=False)
                | ~models.Q(fax="")
                | ~models.Q(postal_address=""),
                name="subscriber_reachable",
                violation_error_message="Give an email address, a fax number or a postal address.",
            ),
        ]
        indexes = [
            # the few addresses typed with join codes, found when their reader asks
            models.Index(
                fields=["join_email"],
                condition=models.Q(join_email__isnull=False),
                name="subscriber_join_email",
            )
        ]

    def __str__(self) -> str:
        if self.email:
            return self.email
        return self.name or self.organization or self.fax or f"Offline reader {self.pk}"

    def save(self, *args, **kwargs) -> None:
        self.normalize()
        fields = kwargs.get("update_fields")
        if fields is not None:
            kwargs["update_fields"] = self.stored_forms(fields)
        super().save(*args, **kwargs)

    @staticmethod
    def stored_forms(fields) -> set[str]:
        """`fields`, with the stored forms that follow from them."""
        fields = set(fields)
        if {"fax", "postal_address"} & fields:
            fields |= {"fax_key", "postal_key"}
        if "email" in fields:
            fields.add("email_hash")
        return fields

    def normalize(self) -> None:
        """The stored forms: the address lower-cased (NULL when there is none), its
        keyed hash ("" when there is none) and the matching keys of the fax number and
        postal address."""
        self.email = (self.email or "").strip().lower() or None
        self.email_hash = address_hash(self.email or "")
        self.fax_key = fax_key(self.fax)
        self.postal_key = postal_key(self.postal_address)

    @property
    def join_code_display(self) -> str:
        """`ABCD-EFGH`, as printed on the letter."""
        return join_code_display(self.join_code or "")

    @property
    def join_url(self) -> str:
        """`SITE_URL/join/<code>/`, for the letter and its QR code; empty without a code."""
        return f"{settings.SITE_URL}/join/{self.join_code}/" if self.join_code else ""

    @property
    def is_suppressed(self) -> bool:
        return bool(self.email) and Suppression.objects.active().matching(self.email).exists()

    @property
    def address_confirmed(self) -> bool:
        """The owner of the address confirmed a subscription or opened a fresh link
        emailed to it, or staff imported it as confirmed. Until then nothing a requester
        typed (name, organization) is put in an email to it."""
        return (
            self.consent_at is not None
            or self.subscriptions.filter(confirmed_at__isnull=False).exists()
        )

    def check_confirm_nonce(self, nonce: str) -> None:
        """BadToken unless a confirm link carrying `nonce` belongs to the current request."""
        if not constant_time_compare(nonce, self.confirm_nonce):
            raise BadToken("This link was used already, or a newer one was sent.")


class SubscriptionQuerySet(models.QuerySet):
    def active(self) -> SubscriptionQuerySet:
        return self.filter(status=Subscription.Status.ACTIVE)

    def pending(self) -> SubscriptionQuerySet:
        return self.filter(status=Subscription.Status.PENDING)

    def audience(self, *, publication_id: int) -> SubscriptionQuerySet:
        """Who an issue of the publication goes to (SPEC §7): its deliverable
        subscriptions. The fan-out, the report and the send page all count this one
        queryset."""
        return self.deliverable().filter(publication_id=publication_id)

    def awaiting_approval(self) -> SubscriptionQuerySet:
        return self.filter(status=Subscription.Status.AWAITING_APPROVAL)

    def offline(
        self, publication: Publication | None = None, *, source: str | None = None
    ) -> SubscriptionQuerySet:
        """Offline readers (of `publication`, from `source`), with what a letter needs,
        in the mail room's order."""
        rows = self.filter(status=Subscription.Status.OFFLINE)
        if publication is not None:
            rows = rows.filter(publication=publication)
        if source is not None:
            rows = rows.filter(subscriber__source=source)
        return rows.select_related("subscriber", "publication").order_by(
            "publication__name", "subscriber__organization", "subscriber__name", "pk"
        )

    def open(self) -> SubscriptionQuerySet:
        """Not ended: pending, awaiting approval, active or offline."""
        return self.filter(status__in=Subscription.OPEN_STATUSES)

    def deliverable(self) -> SubscriptionQuerySet:
        """Active subscriptions whose address is not on the suppression list, matched by
        keyed hash (an erased reader's entry holds nothing else; subscriptions.hashing).
        NOT IN builds one hash of the suppressed entries for the fan-out's INSERT …
        SELECT, where NOT EXISTS would probe the list once per subscriber."""
        suppressed = Suppression.objects.active().values("email_hash")
        return self.active().exclude(subscriber__email_hash__in=suppressed)


class Subscription(models.Model):
    """One person's subscription to one publication.

    Only `active` subscriptions are mailed. `offline` is a reader of the fax or postal
    edition who has no address yet: never mailed, moved to `active` by the join code.

    An *invited* subscription is `pending` with `invited_at` set: a legacy reader who
    received the invitation (the publication is moving to email) rather than a
    confirmation they asked for. It stays `pending` (as the export says) until accepted
    (`active`) or ended; `reminders_sent` counts the reminders and is the claim that
    sends each at most once; `reminded_at` is when the last one went. Its link lasts
    INVITATION_DAYS from the last message; after that the invitation has expired.
    `converted_at` is when a legacy reader moved to email (the invitation accepted, or
    the join code used), whatever happens to the subscription afterwards."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACTIVE = "active", "Active"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"
        # Confirmed by the reader; the publication requires staff approval first.
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        # Reads the fax or postal edition; no address yet.
        OFFLINE = "offline", "Offline (fax or post)"

    OPEN_STATUSES = (Status.PENDING, Status.AWAITING_APPROVAL, Status.ACTIVE, Status.OFFLINE)
    INVITATION_DAYS = 60

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
    invited_at = models.DateTimeField(null=True, blank=True, editable=False)
    reminders_sent = models.PositiveSmallIntegerField(default=0, editable=False)
    reminded_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When a legacy reader moved to email: accepted the invitation or joined by code.
    converted_at = models.DateTimeField(null=True, blank=True, editable=False)

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

    @property
    def export_join_code(self) -> str:
        """The reader's join code as printed on their letter, for an offline subscription
        only."""
        if self.status == self.Status.OFFLINE:
            return self.subscriber.join_code_display
        return ""


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

    def matching(self, email: str | None) -> SuppressionQuerySet:
        """The entries for this address, whether they still name it or not: by its
        keyed hash, under the current key and the fallbacks (subscriptions.hashing)."""
        return self.filter(email_hash__in=address_hashes(email or ""))


class Suppression(models.Model):
    """An address that no send may reach (hard bounce, complaint, staff decision, a
    reader erased at their request).

    Lifting keeps the row for the record; only unlifted rows suppress. Every row
    carries the keyed hash of its address (`email_hash`, made with the key `key_id`
    names) and is matched on it; an erased reader's row keeps nothing else, its
    `email` is empty."""

    class Reason(models.TextChoices):
        BOUNCED = "bounced", "Hard bounce"
        COMPLAINED = "complained", "Spam complaint"
        INVALID = "invalid", "Invalid address"
        BLOCKED = "blocked", "Blocked by the receiver"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed at the ESP"
        MANUAL = "manual", "Added by staff"
        ERASED = "erased", "Reader erased at their request"

    email = models.EmailField(max_length=254, blank=True)
    email_hash = models.CharField(max_length=64, editable=False)
    key_id = models.CharField(max_length=16, editable=False)
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
                "email_hash",
                condition=models.Q(lifted_at__isnull=True),
                name="suppression_unique_active_hash",
            )
        ]
        indexes = [models.Index(fields=["email_hash"])]

    def __str__(self) -> str:
        return f"{self.email or 'an erased reader'} ({self.get_reason_display()})"

    def save(self, *args, **kwargs) -> None:
        self.email = self.email.strip().lower()
        if self.email:
            self.email_hash, self.key_id = address_hash(self.email), key_id()
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


class EmailCooldown(models.Model):
    """When a confirmation or a preferences link last went to a mailbox (see
    subscriptions.mailbox): at most one of each kind per mailbox in a while, whichever
    variant of the address asked and from however many places."""

    class Kind(models.TextChoices):
        CONFIRMATION = "confirmation", "Confirmation"
        PREFERENCES_LINK = "preferences_link", "Preferences link"

    mailbox = models.CharField(max_length=254)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "kind"], name="email_cooldown_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.mailbox} at {self.sent_at:%Y-%m-%d %H:%M}"
