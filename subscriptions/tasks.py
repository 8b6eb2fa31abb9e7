"""Transactional emails: each task loads its rows by id, asks subscriptions.emails for the
message and sends it. Failures are retried, or logged and dropped, by the rule issue
deliveries follow too (`monitor_site.retry`)."""

from __future__ import annotations

import logging
import smtplib

from anymail.exceptions import AnymailError
from celery import Task, shared_task
from django.core.mail import EmailMessage

from monitor_site.retry import backoff, failure
from subscriptions import emails, invitations
from subscriptions.models import ContactMessage, Subscriber, Subscription
from subscriptions.services import is_suppressed

log = logging.getLogger(__name__)

MAX_RETRIES = 8


def _send(task: Task, message: EmailMessage) -> None:
    """Send, or retry later by the rule of `monitor_site.retry`; a permanent refusal is
    logged and dropped."""
    try:
        message.send()
    except (smtplib.SMTPException, OSError, AnymailError) as exc:
        problem = failure(exc)
        if problem.permanent:
            log.warning("%s: not sent, not retried: %s", task.name, problem.reason)
            return
        countdown = backoff(task.request.retries + 1)
        raise task.retry(exc=exc, countdown=countdown) from exc


@shared_task(bind=True, max_retries=MAX_RETRIES)
def send_confirmation(self: Task, subscriber_id: int) -> None:
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None or not subscriber.email:
        return
    if is_suppressed(subscriber.email, asking_again=True):
        return
    pending = list(subscriber.subscriptions.pending().select_related("publication"))
    if not pending:  # confirmed (or ended) since the request
        return
    _send(self, emails.confirmation_message(subscriber, pending))


@shared_task(bind=True, max_retries=MAX_RETRIES)
def send_welcome(self: Task, subscriber_id: int, subscription_ids: list[int]) -> None:
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None or not subscriber.email or is_suppressed(subscriber.email):
        return
    active = list(
        subscriber.subscriptions.active()
        .filter(pk__in=subscription_ids)
        .select_related("publication")
    )
    if active:
        _send(self, emails.welcome_message(subscriber, active))


@shared_task(bind=True, max_retries=MAX_RETRIES)
def send_request_decision(self: Task, subscription_id: int) -> None:
    subscription = (
        Subscription.objects.select_related("subscriber", "publication")
        .filter(pk=subscription_id)
        .first()
    )
    if subscription is None or not subscription.subscriber.email:
        return
    if is_suppressed(subscription.subscriber.email):
        return
    if subscription.status in (Subscription.Status.ACTIVE, Subscription.Status.UNSUBSCRIBED):
        _send(self, emails.request_decision_message(subscription))


@shared_task(bind=True, max_retries=MAX_RETRIES)
def send_preferences_link(self: Task, subscriber_id: int) -> None:
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None or not subscriber.email or is_suppressed(subscriber.email):
        return
    _send(self, emails.preferences_link_message(subscriber))


@shared_task(bind=True, max_retries=MAX_RETRIES)
def send_contact_acknowledgement(self: Task, message_id: int) -> None:
    message = ContactMessage.objects.select_related("publication").filter(pk=message_id).first()
    if message is not None:
        _send(self, emails.contact_acknowledgement_message(message))


@shared_task(bind=True, max_retries=MAX_RETRIES)
def send_contact_notification(self: Task, message_id: int) -> None:
    message = ContactMessage.objects.select_related("publication").filter(pk=message_id).first()
    if message is not None:
        _send(self, emails.contact_notification_message(message))


@shared_task(bind=True, max_retries=MAX_RETRIES)
def send_invitation(self: Task, subscription_id: int, reminder: int) -> None:
    """The invitation (reminder 0) or a reminder, while the invitation is open."""
    subscription = (
        Subscription.objects.select_related("subscriber", "publication")
        .filter(pk=subscription_id, status=Subscription.Status.PENDING)
        .first()
    )
    if subscription is None or not subscription.subscriber.email:
        return
    if is_suppressed(subscription.subscriber.email):
        return
    _send(self, emails.invitation_message(subscription, reminder=reminder))


@shared_task(bind=True, max_retries=MAX_RETRIES)
def send_join_confirmation(self: Task, subscriber_id: int) -> None:
    """To the address typed with the join code, while the code is unused."""
    subscriber = (
        Subscriber.objects.filter(
            pk=subscriber_id,
            join_email__isnull=False,
            subscriptions__status=Subscription.Status.OFFLINE,
        )
        .distinct()
        .first()
    )
    if subscriber is None or is_suppressed(subscriber.join_email, asking_again=True):
        return
    offline = list(subscriber.subscriptions.offline())
    _send(self, emails.join_confirmation_message(subscriber, offline))


@shared_task
def invitation_reminders() -> int:
    """Beat: the reminders that are due (each claimed once, whatever runs at once)."""
    return invitations.invitation_reminders_send()
