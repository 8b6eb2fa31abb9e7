from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from monitor_site import health
from monitor_site import outbox as outbox_store
from monitor_site.celery import app as celery_app
from monitor_site.tasks import HEARTBEAT_KEY

log = logging.getLogger(__name__)


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        return False


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
            # Opening a channel makes the transport really talk to the server.
            conn.default_channel  # noqa: B018
        return True
    except Exception:
        return False


def _token_ok(request: HttpRequest) -> bool:
    token = settings.HEALTHZ_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return (
        bool(token)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), token.encode())
    )


def _run(name: str, check: health.Check, details: bool) -> health.Health:
    try:
        return check(details)
    except Exception as exc:
        log.exception("health check %s failed", name)
        return health.Health(False, {"error": str(exc)})


def _worker_seen() -> str | None:
    try:
        return cache.get(HEARTBEAT_KEY)
    except Exception:  # the cache's server (the database or Redis) is the failing part
        return None


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database, the broker and every part an app registered (delivery) are
    ok; 503 otherwise. Anyone sees ok or failing per part; logged-in staff and callers
    presenting MONITOR_HEALTHZ_TOKEN also see the details. The registered parts need the
    database and the broker: while either fails they are not asked ("unknown")."""
    answers = {"database": _database_ok(), "broker": _broker_ok()}
    # Who the user is lives in the database.
    detailed = _token_ok(request) or (answers["database"] and request.user.is_staff)
    results = {name: health.Health(ok) for name, ok in answers.items()}
    for name, check in health.registered().items():
        results[name] = _run(name, check, detailed) if all(answers.values()) else None
    checks = {
        name: "unknown" if result is None else "ok" if result.ok else "failing"
        for name, result in results.items()
    }
    failing = [name for name, state in checks.items() if state == "failing"]
    body: dict[str, object] = {
        "status": "ok" if not failing else "unavailable",
        "checks": checks,
        "failing": failing,
    }
    if detailed:
        body["details"] = {
            "worker_seen": _worker_seen() if answers["database"] else None,
            **{
                name: result.details
                for name, result in results.items()
                if result is not None and result.details
            },
        }
    return JsonResponse(body, status=503 if failing else 200)


def ratelimited(request: HttpRequest, exception: Exception) -> HttpResponse:
    return render(request, "429.html", status=429)


def webhooks_refused(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    """ESP webhooks are refused until ANYMAIL_WEBHOOK_SECRET is configured."""
    return HttpResponse("Webhooks are not configured.", status=403, content_type="text/plain")


def _outbox_reader(request: HttpRequest) -> None:
    """Refuse staff who may not read the outbox (outbox.may_read)."""
    if not outbox_store.may_read(request.user):
        raise PermissionDenied


@staff_member_required
def outbox(request: HttpRequest) -> HttpResponse:
    """The newest messages the outbox backend stored (development without a mail server)."""
    _outbox_reader(request)
    if not outbox_store.is_active():
        raise Http404("The outbox is not the email backend.")
    messages = [
        {"name": path.name, **outbox_store.read_headers(path)}
        for path in outbox_store.outbox_messages(limit=200)
    ]
    return render(request, "admin/outbox.html", {"messages": messages, "title": "Outbox"})


@staff_member_required
def outbox_message(request: HttpRequest, name: str) -> HttpResponse:
    _outbox_reader(request)
    message = outbox_store.read_message(name) if outbox_store.is_active() else None
    if message is None:
        raise Http404("No such message in the outbox.")
    text = message.get_body(("plain",))
    return render(
        request,
        "admin/outbox_message.html",
        {
            "title": str(message["Subject"]),
            "headers": list(message.items()),
            "text": text.get_content() if text is not None else "",
            "html": message.get_body(("html",)) is not None,
        },
    )
