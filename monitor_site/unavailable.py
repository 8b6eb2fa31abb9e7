"""A part the site depends on (the database, Redis behind the cache and the rate
limits, the Celery broker) not answering is no fault of the request: the visitor gets
503 Service Unavailable with Retry-After, a page saying to try again, and the operator
a logged error. Anything else stays a 500."""

from __future__ import annotations

import logging
from collections.abc import Callable

import kombu.exceptions
import redis.exceptions
from django import db
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.cache import add_never_cache_headers

log = logging.getLogger(__name__)

DOWN = (
    db.OperationalError,
    db.InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,
)
RETRY_AFTER_SECONDS = 120


class ServiceUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DOWN):
            return None
        log.error(
            "%s %s: a service is not answering: %s: %s",
            request.method,
            request.path,
            type(exception).__name__,
            exception,
            exc_info=exception,
        )
        # No request context: its processors may need the part that is down.
        response = HttpResponse(render_to_string("503.html"), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        add_never_cache_headers(response)
        return response
