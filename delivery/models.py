from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from issues.models import Issue, Publication
from subscriptions.models import Subscriber, Subscription


class SendJob(models.Model):
    """The delivery of one issue to its audience: when it started, by whom, and whether
    it runs, is paused or was cancelled. Progress lives in the Delivery rows."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"
        DONE = "done", "Done"

    issue = models.OneToOneField(Issue, on_delete=models.CASCADE, related_name="send_job")
    state = models.CharField(max_length=20, choices=State.choices, default=State.RUNNING)
    audience = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    # The id range of the issue's Delivery rows (all created by one INSERT … SELECT),
    # which the dispatcher walks in id order: rows up to `cursor` have been handed
    # out to chunk tasks, the last time at `handed_out_at`; rows beyond it have not.
    first_id = models.BigIntegerField(null=True, blank=True)
    last_id = models.BigIntegerField(null=True, blank=True)
    cursor = models.BigIntegerField(default=0)
    handed_out_at = models.DateTimeField(null=True, blank=True)
    # When a step of the send last recorded its outcomes (or the send started or
    # resumed), to within a few seconds: what tells a stalled send (delivery/health.py).
    progressed_at = models.DateTimeField(default=timezone.now)
    # The publication's tracking settings when the send started, for the report.
    track_opens = models.BooleanField(default=False)
    track_clicks = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.issue} ({self.get_state_display()})"


# What an erased reader's delivery rows hold instead of the address (RFC 2606: .invalid
# is never a real domain).
ERASED_EMAIL = "erased@erased.invalid"


class Delivery(models.Model):
    """One issue to one subscriber. The unique pair is what makes a send exactly-once on
    our side: rows are claimed with a conditional update and a lease, never by a loop
    that could run twice."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (unsubscribed or suppressed before sending)"
        CANCELLED = "cancelled", "Cancelled (the send was cancelled before it went)"

    # Nothing more happens to a row in these on our side (ESP events may follow).
    FINAL = (Status.SENT, Status.FAILED, Status.SKIPPED, Status.CANCELLED)

    # Rows are only ever created from existing subscriptions (one INSERT … SELECT) and
    # Django applies the on_delete rules itself, so the database is spared a foreign-key
    # check per row: the deferred checks of the issue's key alone cost a third of the
    # fan-out. The unique pair below indexes `issue` already.
    issue = models.ForeignKey(
        Issue,
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_index=False,
        db_constraint=False,
    )
    # NULL once the reader was erased: the row stays, under a placeholder address
    # (ERASED_EMAIL), so that the issue's counts do not change.
    subscriber = models.ForeignKey(
        Subscriber,
        null=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_constraint=False,
    )
    # Which subscription the row was for (its format and status are checked again
    # just before sending). Not indexed: subscriptions are ended, not deleted; a
    # deleted one leaves an id that matches nothing, which reads as "not active".
    subscription = models.ForeignKey(
        Subscription,
        null=True,
        on_delete=models.DO_NOTHING,
        related_name="deliveries",
        db_constraint=False,
        db_index=False,
    )
    email = models.EmailField(max_length=254)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # How many times the row was claimed to be sent; kept, with the last transient
    # error (`last_error`), once it is sent.
    attempts = models.PositiveSmallIntegerField(default=0)
    # Set when a row already behind the job's cursor (a retry) is handed out again; a
    # row that stays queued long after that lost its task and is handed out again.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claim = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    esp_message_id = models.CharField(max_length=200, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "deliveries"
        # The permission that shows readers' signed links (delivery/permissions.py).
        permissions = [("view_outbox", "Can read the outbox and readers' links")]
        constraints = [
            models.UniqueConstraint(fields=["issue", "subscriber"], name="delivery_unique_pair")
        ]
        # Few indexes, none on a column written while a row is sent (the status, the
        # claim, the ESP's message id): claiming a row and recording it each stay on
        # its page (heap-only tuples, in the room the fill factor leaves: migration
        # 0005) instead of writing every index again. MessageId indexes the ESP's ids.
        # The rows waiting for a retry, alone: only a retry sets `next_attempt_at`.
        indexes = [
            models.Index(
                fields=["issue", "id"],
                condition=models.Q(next_attempt_at__isnull=False),
                name="delivery_retry",
            )
        ]

    def __str__(self) -> str:
        return f"{self.issue} -> {self.email} ({self.status})"


class MessageId(models.Model):
    """An ESP's message id, indexed for matching its events to deliveries: a batch call's
    id once, for its issue (the event's address then names the delivery), or one
    message's id with its delivery."""

    esp_message_id = models.CharField(max_length=200, db_index=True)
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="+")
    delivery = models.ForeignKey(Delivery, null=True, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return self.esp_message_id


class RateSlot(models.Model):
    """The next free sending moment of a rate-limited publication, shared by every
    worker process: each takes a second's worth of messages at a time."""

    publication = models.OneToOneField(Publication, on_delete=models.CASCADE, primary_key=True)
    next_at = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return f"{self.publication}: {self.next_at}"


class DeliveryEvent(models.Model):
    """What the ESP reported about one message (anymail's tracking events), stored once:
    `key` is the ESP's event id, or a fingerprint of the event when it has none."""

    class Kind(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        DEFERRED = "deferred", "Deferred"
        BOUNCED = "bounced", "Bounced"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"
        COMPLAINED = "complained", "Complained"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        SUBSCRIBED = "subscribed", "Subscribed"
        OPENED = "opened", "Opened"
        CLICKED = "clicked", "Clicked"
        AUTORESPONDED = "autoresponded", "Autoresponded"
        UNKNOWN = "unknown", "Unknown"

    key = models.CharField(max_length=200, unique=True)
    delivery = models.ForeignKey(
        Delivery, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    issue = models.ForeignKey(
        Issue, null=True, blank=True, on_delete=models.CASCADE, related_name="delivery_events"
    )
    esp = models.CharField(max_length=40)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    email = models.EmailField(max_length=254, blank=True)
    esp_message_id = models.CharField(max_length=200, blank=True)
    reject_reason = models.CharField(max_length=40, blank=True)
    description = models.TextField(blank=True)
    url = models.URLField(max_length=2000, blank=True)
    # An open or click by a machine (a privacy proxy such as Apple Mail's, a security
    # scanner), as the ESP flags it or its user agent shows (delivery/feedback.py).
    machine = models.BooleanField(default=False)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(fields=["issue", "kind", "occurred_at"]),
            models.Index(fields=["email", "occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.email} ({self.esp})"


class EventTally(models.Model):
    """Events of an issue that are no longer stored, counted: the open and click events
    past their retention time and the events of erased readers (delivery/tallies.py).
    The report adds these to the events still stored."""

    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=DeliveryEvent.Kind.choices)
    machine = models.BooleanField(default=False)
    events = models.PositiveIntegerField(default=0)
    # distinct addresses, each counted when the last of its events of this kind went
    people = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["issue", "kind", "machine"], name="event_tally_unique_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.issue}: {self.events} {self.kind}"


class BounceMessage(models.Model):
    """One message read from the bounce mailbox (delivery/bounces.py), recorded once by
    its Message-ID (or the hash of its bytes when it has none), so that a copy read again
    counts nothing twice; and, for one kept aside, why."""

    class Outcome(models.TextChoices):
        COUNTED = "counted", "Counted"  # failures recorded against deliveries
        IGNORED = "ignored", "Ignored"  # read: a delay notice, an auto-reply, not ours
        KEPT = "kept", "Kept aside"  # could not be read or trusted; the reason says why

    key = models.CharField(max_length=200, unique=True)
    source = models.CharField(max_length=20)  # imap, maildir, stdin
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.TextField(blank=True)
    subject = models.CharField(max_length=200, blank=True)
    size = models.PositiveIntegerField(default=0)
    # where a kept message is now (a mailbox folder or a file), for staff to look at it
    kept_in = models.CharField(max_length=500, blank=True)
    events = models.PositiveSmallIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)  # for retention

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()}: {self.subject or self.key}"
