"""Public subscription pages (SPEC §5). A GET never changes anything: links in email
are opened by scanners, so every change is a POST behind a button."""

from __future__ import annotations

from typing import TypeVar

from django.conf import settings
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods
from django_ratelimit.decorators import ratelimit

from issues.models import Publication
from monitor_site.clientip import client_ip
from subscriptions import invitations, joining, services, tokens
from subscriptions.forms import ContactForm, EmailForm, JoinForm, PreferencesForm, SubscribeForm
from subscriptions.joincodes import join_code_display, join_code_normalize
from subscriptions.mailbox import mailbox
from subscriptions.models import Subscriber, Subscription

T = TypeVar("T", bound=Model)

# Per client IP (monitor_site.clientip), and per mailbox whatever the IP.
SUBSCRIBE_RATE_IP = "10/m"
SUBSCRIBE_RATE_ADDRESS = "10/h"
PREFERENCES_RATE_IP = "5/m"
PREFERENCES_RATE_ADDRESS = "5/h"
CONTACT_RATE_IP = "5/m"
CONTACT_RATE_ADDRESS = "5/h"
# A code is one of 32**8: per IP and per code, guessing one is hopeless.
JOIN_RATE_IP = "10/m"
JOIN_RATE_CODE = "5/h"
JOIN_RATE_ADDRESS = "10/h"
BAD_CODE = "This code is not valid or has been used. Check it against your letter."


def posted_address(group: str, request: HttpRequest) -> str:
    """Rate-limit key: the mailbox of the posted address, so that its variants
    (case, +tags, Gmail's dots) share one limit."""
    return mailbox(request.POST.get("email", ""))[:254]


def posted_code(group: str, request: HttpRequest) -> str:
    """Rate-limit key: the posted join code, canonical, so that every way of typing one
    code counts against it."""
    typed = request.POST.get("code", "")[:40]
    return join_code_normalize(typed) or typed.strip().upper()


def bad_link(request: HttpRequest, error: tokens.BadToken | None, *, kind: str) -> HttpResponse:
    """A friendly page for a link that is tampered with, expired, or points at nothing."""
    status = 404 if error is None else 400
    context = {"kind": kind, "expired": bool(error and error.expired), "form": EmailForm()}
    return render(request, "subscriptions/bad_link.html", context, status=status)


def _signed_row(
    request: HttpRequest, rows: QuerySet[T], purpose: str, token: str, *, kind: str
) -> tuple[T | None, HttpResponse | None]:
    """The row a signed link points at, or the friendly page for a bad link."""
    try:
        pk = tokens.read_id_token(purpose, token)
    except tokens.BadToken as exc:
        return None, bad_link(request, exc, kind=kind)
    row = rows.filter(pk=pk).first()
    if row is None:
        return None, bad_link(request, None, kind=kind)
    return row, None


def _form_page(request: HttpRequest, template: str, form, status: int = 200) -> HttpResponse:
    return render(request, template, {"form": form}, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
@ratelimit(key="ip", rate=SUBSCRIBE_RATE_IP, method="POST", block=True)
@ratelimit(key=posted_address, rate=SUBSCRIBE_RATE_ADDRESS, method="POST", block=True)
def subscribe(request: HttpRequest) -> HttpResponse:
    """POST answers the same page whether the address is new, pending, active or ended."""
    if request.method == "GET":
        return _form_page(request, "subscriptions/subscribe.html", SubscribeForm())
    form = SubscribeForm(request.POST)
    if not form.is_valid():
        return _form_page(request, "subscriptions/subscribe.html", form, status=400)
    if not form.is_bot():
        services.subscription_request(
            email=form.cleaned_data["email"],
            name=form.cleaned_data["name"],
            organization=form.cleaned_data["organization"],
            publications=form.cleaned_data["publications"],
            ip=client_ip(request),
            form="web:/subscribe/",
        )
    return render(request, "subscriptions/subscribe_sent.html")


@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows one button; POST confirms the subscriber's pending subscriptions. A
    link of an earlier request (used, or replaced by a newer email) gets the bad-link
    page."""
    try:
        subscriber_id, nonce = tokens.read_confirm_token(token)
        subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
        if subscriber is None:
            return bad_link(request, None, kind="confirm")
        if request.method == "POST":
            changed = services.subscription_confirm(
                subscriber=subscriber, nonce=nonce, ip=client_ip(request)
            )
            return render(
                request,
                "subscriptions/confirmed.html",
                {"changed": changed, "subscriptions": _subscriptions(subscriber)},
            )
        subscriber.check_confirm_nonce(nonce)
    except tokens.BadToken as exc:
        return bad_link(request, exc, kind="confirm")
    pending = list(subscriber.subscriptions.pending().select_related("publication"))
    return render(
        request,
        "subscriptions/confirm.html",
        {"pending": pending, "subscriptions": _subscriptions(subscriber)},
    )


def _subscriptions(subscriber: Subscriber) -> list[Subscription]:
    return list(subscriber.subscriptions.select_related("publication").order_by("publication"))


@never_cache
@csrf_exempt  # only for the RFC 8058 one-click body; the page's own form keeps CSRF
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "POST" and request.POST.get("List-Unsubscribe") == "One-Click":
        return _one_click_unsubscribe(request, token)
    return _unsubscribe_page(request, token)


def _one_click_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """RFC 8058: the mailbox provider POSTs without cookies; answer 2xx, never redirect."""
    try:
        subscription_id = tokens.read_id_token(tokens.UNSUBSCRIBE, token)
    except tokens.BadToken:
        return HttpResponse(
            "This unsubscribe link is not valid.\n", status=400, content_type="text/plain"
        )
    subscription = Subscription.objects.filter(pk=subscription_id).first()
    if subscription is None:
        return HttpResponse("No such subscription.\n", status=404, content_type="text/plain")
    services.subscription_unsubscribe(subscription=subscription, reason="one-click (RFC 8058)")
    return HttpResponse("You are unsubscribed.\n", content_type="text/plain")


@csrf_protect
def _unsubscribe_page(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows one button; POST ends the subscription. The page never offers to
    resubscribe: that goes through the subscribe form and double opt-in."""
    subscription, bad = _signed_row(
        request,
        Subscription.objects.select_related("publication"),
        tokens.UNSUBSCRIBE,
        token,
        kind="unsubscribe",
    )
    if bad is not None:
        return bad
    if request.method == "POST":
        services.subscription_unsubscribe(subscription=subscription, reason="unsubscribe page")
        return render(request, "subscriptions/unsubscribed.html", {"subscription": subscription})
    template = (
        "subscriptions/unsubscribe.html"
        if subscription.status in Subscription.OPEN_STATUSES
        else "subscriptions/unsubscribed.html"
    )
    return render(request, template, {"subscription": subscription})


@never_cache
@require_http_methods(["GET", "POST"])
@ratelimit(key="ip", rate=PREFERENCES_RATE_IP, method="POST", block=True)
@ratelimit(key=posted_address, rate=PREFERENCES_RATE_ADDRESS, method="POST", block=True)
def preferences_request(request: HttpRequest) -> HttpResponse:
    """Ask for a fresh preferences link; the answer is the same for any address."""
    if request.method == "GET":
        return _form_page(request, "subscriptions/preferences_request.html", EmailForm())
    form = EmailForm(request.POST)
    if not form.is_valid():
        return _form_page(request, "subscriptions/preferences_request.html", form, status=400)
    if not form.is_bot():
        services.preferences_link_send(email=form.cleaned_data["email"])
    return render(request, "subscriptions/preferences_sent.html")


@never_cache
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    """Issue footers and older links may have been forwarded: a publication added
    through them waits for a confirmation by email (services.preferences_update)."""
    try:
        subscriber_id, address_proven = tokens.read_preferences_token(token)
    except tokens.BadToken as exc:
        return bad_link(request, exc, kind="preferences")
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        return bad_link(request, None, kind="preferences")
    change = None
    if request.method == "POST":
        form = PreferencesForm(request.POST, subscriber=subscriber)
        if form.is_valid():
            change = services.preferences_update(
                subscriber=subscriber,
                name=form.cleaned_data["name"],
                publications=form.cleaned_data["publications"],
                format=form.cleaned_data["format"],
                address_proven=address_proven,
            )
            subscriber.refresh_from_db()
            form = PreferencesForm(subscriber=subscriber)
    else:
        form = PreferencesForm(subscriber=subscriber)
    context = {
        "form": form,
        "saved": change is not None,
        "change": change,
        "email": subscriber.email,
        "subscriptions": _subscriptions(subscriber),
    }
    status = 400 if form.is_bound and not form.is_valid() else 200
    return render(request, "subscriptions/preferences.html", context, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
@ratelimit(key="ip", rate=CONTACT_RATE_IP, method="POST", block=True)
@ratelimit(key=posted_address, rate=CONTACT_RATE_ADDRESS, method="POST", block=True)
def contact(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        form = ContactForm(initial={"publication": request.GET.get("publication", "")[:60]})
        return _form_page(request, "subscriptions/contact.html", form)
    form = ContactForm(request.POST)
    if not form.is_valid():
        return _form_page(request, "subscriptions/contact.html", form, status=400)
    if not form.is_bot():
        services.contact_message_create(
            name=form.cleaned_data["name"],
            email=form.cleaned_data["email"],
            subject=form.cleaned_data["subject"],
            body=form.cleaned_data["body"],
            publication=form.cleaned_data["publication"],
            ip=client_ip(request),
        )
    return render(request, "subscriptions/contact_sent.html")


@never_cache
@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows one button; POST accepts the invitation (the subscription goes active)."""
    subscription, bad = _signed_row(
        request,
        Subscription.objects.select_related("publication", "subscriber"),
        tokens.INVITATION,
        token,
        kind="invitation",
    )
    if bad is not None:
        return bad
    if request.method == "POST":
        changed = invitations.invitation_accept(subscription=subscription, ip=client_ip(request))
        subscription.refresh_from_db(fields=["status"])
        context = {"subscription": subscription, "changed": changed}
        return render(request, "subscriptions/invitation_accepted.html", context)
    return render(request, "subscriptions/invitation.html", {"subscription": subscription})


@never_cache
@require_http_methods(["GET", "POST"])
@ratelimit(key="ip", rate=JOIN_RATE_IP, method="POST", block=True)
@ratelimit(key=posted_code, rate=JOIN_RATE_CODE, method="POST", block=True)
@ratelimit(key=posted_address, rate=JOIN_RATE_ADDRESS, method="POST", block=True)
def join(request: HttpRequest, code: str = "") -> HttpResponse:
    """The code from the letter and an address. A GET (the letter's QR code) only fills
    in the code; a wrong or used code gets one answer, whatever the code."""
    if request.method == "GET":
        canonical = join_code_normalize(code)
        initial = {"code": join_code_display(canonical) if canonical else code[:40]}
        return _form_page(request, "subscriptions/join.html", JoinForm(initial=initial))
    form = JoinForm(request.POST)
    if not form.is_valid():
        return _form_page(request, "subscriptions/join.html", form, status=400)
    if not form.is_bot() and not joining.join_request(
        code=form.cleaned_data["code"], email=form.cleaned_data["email"]
    ):
        form.add_error("code", BAD_CODE)
        return _form_page(request, "subscriptions/join.html", form, status=400)
    return render(request, "subscriptions/join_sent.html")


@never_cache
@require_http_methods(["GET", "POST"])
def join_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows one button and no one's details; POST moves the reader to email and
    then says which publications the address receives."""
    try:
        subscriber_id, digest = tokens.read_join_token(token)
    except tokens.BadToken as exc:
        return bad_link(request, exc, kind="join")
    subscriber = joining.join_link_subscriber(subscriber_id=subscriber_id, digest=digest)
    if subscriber is None:
        return bad_link(request, None, kind="join")
    if request.method == "POST":
        receiving = joining.join_confirm(subscriber=subscriber, ip=client_ip(request))
        return render(request, "subscriptions/join_confirmed.html", {"receiving": receiving})
    waiting = subscriber.subscriptions.filter(status=Subscription.Status.OFFLINE).exists()
    context = {"email": subscriber.join_email, "waiting": waiting}
    return render(request, "subscriptions/join_confirm.html", context)


def _duration(days: int) -> str:
    """`30 days`, `12 months`, `13 months`: as a reader would say it."""
    if days < 60:
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{round(days / 30.4375)} months"


@require_http_methods(["GET"])
def privacy(request: HttpRequest) -> HttpResponse:
    """What is kept about readers, for how long, and how to get it or have it erased."""
    publications = list(Publication.objects.filter(active=True).order_by("name"))
    context = {
        "unconfirmed": _duration(settings.RETAIN_UNCONFIRMED_DAYS),
        "ip": _duration(settings.RETAIN_IP_DAYS),
        "events": _duration(settings.RETAIN_EVENTS_DAYS),
        "tracking_opens": [p for p in publications if p.track_opens],
        "tracking_clicks": [p for p in publications if p.track_clicks],
        "contact_emails": sorted({p.contact_email for p in publications if p.contact_email}),
    }
    return render(request, "subscriptions/privacy.html", context)
