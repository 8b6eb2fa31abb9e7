"""django-anymail's webhook URLs (`/anymail/<esp>/tracking/` and the rest), guarded.

* While no WEBHOOK_SECRET is configured (ANYMAIL_WEBHOOK_SECRET) every webhook answers
  403: anymail itself would only warn and accept anyone's events. The secret is read per
  request, so production and tests route the same way.
* Anymail checks the secret as HTTP basic auth (wrong or missing: 400; Amazon SES 401).
* A body that cannot be parsed, or a tracking event that names neither a recipient nor
  a message, answers 400, never 500: anymail lets JSON and key errors through as server
  errors, which would make the sender retry garbage for days.
* A webhook for an ESP that is not set up here (no signing key, no boto3) answers 404.
* A failing receiver (the database) answers 503 (monitor_site.unavailable), so that the
  ESP retries.
"""

from __future__ import annotations

import logging
from typing import Any

from anymail.exceptions import AnymailAPIError, AnymailWebhookValidationFailure
from anymail.signals import AnymailTrackingEvent
from anymail.urls import urlpatterns as anymail_urlpatterns
from anymail.utils import get_anymail_setting
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern
from django.views.decorators.csrf import csrf_exempt

from monitor_site.views import webhooks_refused

log = logging.getLogger(__name__)

# What anymail's parsers raise on a body that is not what the ESP sends. AnymailAPIError:
# the Amazon SES view's word for "not an SNS message".
MALFORMED = (ValueError, KeyError, TypeError, AttributeError, IndexError, AnymailAPIError)


class MalformedBodyAs400:
    """Mixed in before an anymail webhook view: parse errors become validation failures
    (SuspiciousOperation, which Django answers with 400)."""

    esp_name: str

    def run_validators(self, request: HttpRequest) -> None:
        try:
            super().run_validators(request)  # type: ignore[misc]
        except AnymailWebhookValidationFailure:
            raise
        except MALFORMED as exc:
            raise AnymailWebhookValidationFailure(
                f"Malformed {self.esp_name} webhook body"
            ) from exc

    def parse_events(self, request: HttpRequest) -> list[Any]:
        try:
            events = list(super().parse_events(request))  # type: ignore[misc]
        except AnymailWebhookValidationFailure:
            raise
        except MALFORMED as exc:
            raise AnymailWebhookValidationFailure(
                f"Malformed {self.esp_name} webhook body"
            ) from exc
        for event in events:
            # An event that names neither a recipient nor a message is about nothing.
            if isinstance(event, AnymailTrackingEvent) and not (
                event.recipient or event.message_id
            ):
                raise AnymailWebhookValidationFailure(
                    f"{self.esp_name} tracking event without recipient or message id"
                )
        return events


def webhooks_configured() -> bool:
    return bool(get_anymail_setting("webhook_secret", default=None))


def _guarded(pattern: URLPattern) -> URLPattern:
    view_class = pattern.callback.view_class
    guarded_class = type(
        view_class.__name__, (MalformedBodyAs400, view_class), {"__module__": __name__}
    )
    inner = guarded_class.as_view(**pattern.callback.view_initkwargs)

    @csrf_exempt
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not webhooks_configured():
            return webhooks_refused(request)
        try:
            return inner(request, *args, **kwargs)
        except ImproperlyConfigured:
            log.exception("webhook %s is not configured", request.path)
            return HttpResponse(
                "This webhook is not configured.", status=404, content_type="text/plain"
            )

    view.view_class = guarded_class  # type: ignore[attr-defined]
    return URLPattern(pattern.pattern, view, pattern.default_args, pattern.name)


def urlpatterns() -> list[URLPattern]:
    """Anymail's URL patterns, same paths and names, each view guarded."""
    return [_guarded(p) for p in anymail_urlpatterns]
