from __future__ import annotations

import base64
import hashlib

from csp.constants import UNSAFE_HASHES
from csp.decorators import csp_update
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from import_export.admin import ExportMixin, ImportMixin
from import_export.forms import ConfirmImportForm, ImportForm

from issues.models import Publication
from monitor_site import charts
from subscriptions import conversion, erasure, readerdata, services
from subscriptions.letters import invitation_letters_pdf
from subscriptions.models import (
    ContactMessage,
    Subscriber,
    Subscription,
    SubscriptionEvent,
    SubscriptionRequest,
    Suppression,
)
from subscriptions.resources import SubscriberImportResource, SubscriptionExportResource

Status = Subscription.Status


def _hash_source(code: str) -> str:
    """The CSP source that lets in one inline attribute value, by its SHA-256."""
    return f"'sha256-{base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()}'"


# django-import-export's pages have inline attributes of their own: the export page two
# style attributes and an event handler, the import preview's diffs (diff-match-patch)
# coloured <ins> and <del>. Exactly those are let in, by their hashes ('unsafe-hashes').
IMPORT_EXPORT_POLICY = {
    "script-src-attr": [UNSAFE_HASHES, _hash_source("onSelectToggleChange(event)")],
    "style-src-attr": [
        UNSAFE_HASHES,
        *map(
            _hash_source,
            ["padding: 0;", "font-weight: bold;", "background:#e6ffe6;", "background:#ffe6e6;"],
        ),
    ],
}


# --- subscribers, with the legacy-list import --------------------------------------------


class _ImportOptions(forms.Form):
    publication = forms.ModelChoiceField(queryset=Publication.objects.all())
    source = forms.ChoiceField(choices=Subscriber.Source.choices, initial=Subscriber.Source.IMPORT)
    confirmed = forms.BooleanField(
        required=False,
        help_text="Start subscriptions as active. Otherwise each new person gets one "
        "confirmation (re-permission) email.",
    )


class SubscriberImportForm(_ImportOptions, ImportForm):
    pass


class SubscriberConfirmImportForm(_ImportOptions, ConfirmImportForm):
    """Carries the options chosen before the preview to the real import."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in _ImportOptions.base_fields:
            self.fields[name].widget = forms.HiddenInput()


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    extra = 0
    fields = ("publication", "status", "format", "created_at", "confirmed_at", "ended_at", "reason")
    readonly_fields = ("publication", "status", "created_at", "confirmed_at", "ended_at", "reason")
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # New subscriptions come through the subscribe form, the import or a request.
        return False


@admin.register(Subscriber)
class SubscriberAdmin(ImportMixin, admin.ModelAdmin):
    list_display = ("__str__", "name", "organization", "source", "consent_at", "created_at")
    list_filter = ("source", "subscriptions__status", "subscriptions__publication", "created_at")
    search_fields = ("email", "name", "organization", "fax", "join_code")
    readonly_fields = (
        "join_code_display",
        "consent_at",
        "consent_ip",
        "consent_form",
        "created_at",
    )
    fieldsets = (
        (None, {"fields": ("email", "name", "organization", "source")}),
        ("Legacy channels", {"fields": ("fax", "postal_address", "join_code_display")}),
        ("Consent", {"fields": ("consent_at", "consent_ip", "consent_form", "created_at")}),
    )
    inlines = [SubscriptionInline]
    date_hierarchy = "created_at"
    resource_classes = [SubscriberImportResource]
    import_form_class = SubscriberImportForm
    confirm_form_class = SubscriberConfirmImportForm
    change_form_template = "subscriptions/admin/subscriber_change_form.html"
    actions = ["erase_readers"]

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:object_id>/reader-data/",
                view(self.reader_data_view),
                name="subscriptions_subscriber_reader_data",
            ),
            path(
                "<int:object_id>/erase/",
                view(self.erase_view),
                name="subscriptions_subscriber_erase",
            ),
            *super().get_urls(),
        ]

    def has_erase_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.has_perm("subscriptions.erase_subscriber")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "may_erase": self.has_erase_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def _reader(self, request: HttpRequest, object_id: int) -> Subscriber:
        subscriber = get_object_or_404(Subscriber, pk=object_id)
        if not self.has_view_permission(request, subscriber):
            raise PermissionDenied
        if not subscriber.email:
            raise Http404("An offline reader without an address: their row is all there is.")
        return subscriber

    def reader_data_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Everything held about the subscriber's address, as one JSON file."""
        subscriber = self._reader(request, object_id)
        document = readerdata.reader_data(email=subscriber.email)
        return HttpResponse(
            readerdata.reader_data_json(document),
            content_type="application/json; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="reader-data-{subscriber.pk}.json"'
            },
        )

    def erase_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        subscriber = self._reader(request, object_id)
        if not self.has_erase_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            self._erase(request, [subscriber.email])
            return redirect("admin:subscriptions_subscriber_changelist")
        return self._erase_page(request, [subscriber], action=False)

    @admin.action(description="Erase the selected readers (GDPR)…", permissions=["erase"])
    def erase_readers(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        readers = [s for s in queryset.order_by("email") if s.email]
        if "apply" in request.POST:
            self._erase(request, [s.email for s in readers])
            return None
        return self._erase_page(request, readers, action=True)

    def _erase(self, request: HttpRequest, emails: list[str]) -> None:
        done = [erasure.reader_erase(email=email, by=request.user) for email in emails]
        erased = sum(e is not None for e in done)
        self.message_user(
            request,
            f"{erased} reader{'s' if erased != 1 else ''} erased; only a keyed hash of each "
            "address stays, on the suppression list.",
        )

    def _erase_page(self, request: HttpRequest, readers: list, *, action: bool) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Erase readers",
            "opts": self.model._meta,
            "readers": readers,
            "action": action,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "changelist_url": reverse("admin:subscriptions_subscriber_changelist"),
        }
        return TemplateResponse(request, "subscriptions/admin/erase_readers.html", context)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The subscriptions__ filters join; one row per person all the same.
        return super().get_queryset(request).distinct()

    @csp_update(IMPORT_EXPORT_POLICY)
    def import_action(self, request: HttpRequest, **kwargs) -> HttpResponse:
        return super().import_action(request, **kwargs)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        # A join code is found however it is typed (ABCD-EFGH, abcdefgh).
        from subscriptions.joincodes import join_code_normalize

        code = join_code_normalize(search_term)
        return super().get_search_results(request, queryset, code or search_term)

    @admin.display(description="join code")
    def join_code_display(self, obj: Subscriber) -> str:
        return obj.join_code_display or "-"

    def get_confirm_form_initial(self, request, import_form):
        initial = super().get_confirm_form_initial(request, import_form)
        if import_form is not None:
            initial.update(
                publication=import_form.cleaned_data["publication"].pk,
                source=import_form.cleaned_data["source"],
                confirmed=import_form.cleaned_data["confirmed"],
            )
        return initial

    def get_import_resource_kwargs(self, request, **kwargs):
        form = kwargs.get("form")
        # An invalid form (an option missing or unknown) is shown again with its errors.
        if form is not None and form.is_bound and form.is_valid():
            return {
                "publication": form.cleaned_data["publication"],
                "source": form.cleaned_data["source"],
                "confirmed": form.cleaned_data["confirmed"],
            }
        return {}


# --- subscriptions, with the export ------------------------------------------------------


class SubscriptionEventInline(admin.TabularInline):
    model = SubscriptionEvent
    extra = 0
    fields = ("at", "from_status", "to_status", "reason", "by")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Subscription)
class SubscriptionAdmin(ExportMixin, admin.ModelAdmin):
    list_display = (
        "subscriber",
        "publication",
        "status",
        "format",
        "created_at",
        "confirmed_at",
        "ended_at",
    )
    list_filter = ("status", "publication", "format", "created_at")
    list_select_related = ("subscriber", "publication")
    search_fields = ("subscriber__email", "subscriber__name", "subscriber__organization")
    raw_id_fields = ("subscriber",)
    readonly_fields = ("status", "created_at", "confirmed_at", "ended_at", "reason")
    inlines = [SubscriptionEventInline]
    actions = ["unsubscribe", "send_confirmation", "print_letters", "print_fax_sheets"]
    resource_classes = [SubscriptionExportResource]
    import_export_change_list_template = "subscriptions/admin/subscription_change_list.html"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("conversion/", view(self.conversion_view), name="subscriptions_conversion"),
            path(
                "conversion/<int:publication_id>/",
                view(self.conversion_view),
                name="subscriptions_conversion",
            ),
            path(
                "conversion/<int:publication_id>/offline.csv",
                view(self.offline_csv_view),
                name="subscriptions_offline_csv",
            ),
            *super().get_urls(),
        ]

    def conversion_view(self, request: HttpRequest, publication_id: int | None = None):
        """Legacy readers moving to email, per publication: counts by source and state,
        conversions per week, and the offline readers' list."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        publications = list(Publication.objects.order_by("name"))
        if publication_id is None:
            publication = publications[0] if publications else None
        else:
            publication = next((p for p in publications if p.pk == publication_id), None)
            if publication is None:
                raise Http404("No such publication.")
        report = conversion.conversion_report(publication=publication) if publication else None
        chart = None
        if report is not None:
            weeks = [("converted", f"week of {monday:%d %b %Y}", n) for monday, n in report.weekly]
            chart = charts.bar_chart(weeks, title="Converted per week")
        context = {
            **self.admin_site.each_context(request),
            "title": "Conversion to email" + (f": {publication}" if publication else ""),
            "opts": self.model._meta,
            "publications": publications,
            "publication": publication,
            "report": report,
            "states": conversion.STATES,
            "sources": conversion.SOURCES,
            "chart": chart,
            "weeks": conversion.WEEKS,
            "offline_sources": [
                (Subscriber.Source.LEGACY_POSTAL, "postal"),
                (Subscriber.Source.LEGACY_FAX, "fax"),
            ],
        }
        return TemplateResponse(request, "subscriptions/admin/conversion.html", context)

    def offline_csv_view(self, request: HttpRequest, publication_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        publication = get_object_or_404(Publication, pk=publication_id)
        source = request.GET.get("source") or None
        if source is not None and source not in Subscriber.Source.values:
            source = None
        name = f"{publication.slug}-offline-readers{'-' + source if source else ''}.csv"
        return StreamingHttpResponse(
            conversion.offline_readers_csv(publication, source=source),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @csp_update(IMPORT_EXPORT_POLICY)
    def export_action(self, request: HttpRequest) -> HttpResponse:
        return super().export_action(request)

    def get_readonly_fields(self, request: HttpRequest, obj: Subscription | None = None):
        if obj is not None:
            return (*self.readonly_fields, "subscriber", "publication")
        return self.readonly_fields

    @admin.action(description="Unsubscribe the selected subscriptions", permissions=["change"])
    def unsubscribe(self, request: HttpRequest, queryset: QuerySet) -> None:
        changed = sum(
            services.subscription_unsubscribe(
                subscription=s, reason=f"by staff ({request.user})", by=request.user
            )
            for s in queryset
        )
        self.message_user(request, f"{changed} unsubscribed; {len(queryset) - changed} unchanged.")

    @admin.action(
        description="Send a confirmation email to pending subscribers", permissions=["change"]
    )
    def send_confirmation(self, request: HttpRequest, queryset: QuerySet) -> None:
        subscribers = {s.subscriber for s in queryset.filter(status=Status.PENDING)}
        sent = sum(services.confirmation_send(subscriber=s) for s in subscribers)
        self.message_user(
            request,
            f"{sent} confirmation emails queued ({len(subscribers) - sent} skipped: "
            "one per address per 10 minutes).",
        )

    # Join codes act for their readers like signed links: printing them takes the right
    # to change subscriptions, not only to see them.
    @admin.action(
        description="Print invitation letters for the selected offline readers (PDF)",
        permissions=["change"],
    )
    def print_letters(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._invitations_pdf(request, queryset, variant="letter")

    @admin.action(
        description="Print fax sheets for the selected offline readers (PDF)",
        permissions=["change"],
    )
    def print_fax_sheets(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._invitations_pdf(request, queryset, variant="fax")

    def _invitations_pdf(
        self, request: HttpRequest, queryset: QuerySet, *, variant: str
    ) -> HttpResponse | None:
        """The invitations of the selected offline readers of one publication, as a PDF
        download; a message instead when there is nothing to print."""
        selected = queryset.select_related("subscriber", "publication").order_by(
            "subscriber__organization", "subscriber__name", "pk"
        )
        publications = {s.publication for s in selected}
        if len(publications) != 1:
            self.message_user(
                request,
                "Select the offline readers of one publication: each prints with its masthead.",
                messages.ERROR,
            )
            return None
        letters, _ = conversion.invitation_letters(selected, variant=variant)
        needs = "postal address" if variant == "letter" else "fax number"
        if not letters:
            self.message_user(
                request,
                f"Nothing to print: none of the selected is an offline reader with a {needs}.",
                messages.ERROR,
            )
            return None
        (publication,) = publications
        try:
            data = invitation_letters_pdf(letters, publication=publication, variant=variant)
        except ValueError as exc:  # an address too long for the envelope's window
            self.message_user(request, f"Nothing printed: {exc}.", messages.ERROR)
            return None
        kind = "letters" if variant == "letter" else "fax-sheets"
        return HttpResponse(
            data,
            content_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="{publication.slug}-{kind}.pdf"'
            },
        )


# --- subscription requests (publications that require approval) -----------------------


class RequestStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [
            (Status.AWAITING_APPROVAL, "Awaiting approval (default)"),
            (Status.PENDING, "Not yet confirmed by the reader"),
            (Status.ACTIVE, "Approved"),
            ("ended", "Rejected or ended"),
            ("all", "All"),
        ]

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            selected = (self.value() or Status.AWAITING_APPROVAL) == lookup
            yield {
                "selected": selected,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or Status.AWAITING_APPROVAL
        if value == "all":
            return queryset
        if value == "ended":
            return queryset.filter(status__in=services.ENDED_STATUSES)
        return queryset.filter(status=value)


@admin.register(SubscriptionRequest)
class SubscriptionRequestAdmin(admin.ModelAdmin):
    list_display = ("email", "name", "organization", "publication", "status", "created_at")
    list_filter = (RequestStatusFilter, ("publication", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("subscriber", "publication")
    search_fields = ("subscriber__email", "subscriber__name", "subscriber__organization")
    ordering = ("created_at",)
    actions = ["approve", "reject"]
    fields = ("subscriber", "publication", "status", "created_at", "reason")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(publication__requires_approval=True)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(ordering="subscriber__email")
    def email(self, obj: Subscription) -> str:
        return obj.subscriber.email

    @admin.display(ordering="subscriber__name")
    def name(self, obj: Subscription) -> str:
        return obj.subscriber.name

    @admin.display(ordering="subscriber__organization")
    def organization(self, obj: Subscription) -> str:
        return obj.subscriber.organization

    @admin.action(
        description="Approve the selected requests (the requesters are told)",
        permissions=["change"],
    )
    def approve(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = sum(services.subscription_approve(subscription=s, by=request.user) for s in queryset)
        self._report(request, done, len(queryset), "approved")

    @admin.action(
        description="Reject the selected requests (the requesters are told)", permissions=["change"]
    )
    def reject(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = sum(services.subscription_reject(subscription=s, by=request.user) for s in queryset)
        self._report(request, done, len(queryset), "rejected")

    def _report(self, request: HttpRequest, done: int, total: int, what: str) -> None:
        level = messages.SUCCESS if done == total else messages.WARNING
        text = f"{done} {what}."
        if done != total:
            text += f" {total - done} skipped: not awaiting approval."
        self.message_user(request, text, level)


# --- suppression list ---------------------------------------------------------------


class LiftForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text="Why the address may receive mail again (kept with the record).",
    )


class ActiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "Suppressing"), ("lifted", "Lifted")]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(lifted_at__isnull=True)
        if self.value() == "lifted":
            return queryset.filter(lifted_at__isnull=False)
        return queryset


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ("address", "reason", "source", "created_at", "lifted_at", "lifted_by")
    list_filter = (ActiveFilter, "reason", "created_at")
    list_select_related = ("lifted_by",)
    search_fields = ("email", "source", "lifted_note")
    date_hierarchy = "created_at"
    actions = ["lift"]

    @admin.display(description="email", ordering="email")
    def address(self, obj: Suppression) -> str:
        return obj.email or "(erased reader: a keyed hash only)"

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        # An address typed in full also finds the entry an erasure left, by its hash.
        results, duplicates = super().get_search_results(request, queryset, search_term)
        if "@" in search_term:
            results |= queryset.matching(search_term.strip())
        return results, duplicates

    def get_form(self, request: HttpRequest, obj: Suppression | None = None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is None:  # staff add an address; only an erasure leaves a hash alone
            form.base_fields["email"].required = True
            form.base_fields["reason"].choices = [
                c for c in Suppression.Reason.choices if c[0] != Suppression.Reason.ERASED
            ]
        return form

    def get_fields(self, request: HttpRequest, obj: Suppression | None = None):
        if obj is None:
            return ("email", "reason", "source")
        return ("email", "reason", "source", "created_at", "lifted_at", "lifted_by", "lifted_note")

    def get_readonly_fields(self, request: HttpRequest, obj: Suppression | None = None):
        return () if obj is None else self.get_fields(request, obj)

    def save_model(self, request, obj: Suppression, form, change: bool) -> None:
        if change:
            return
        # Through the service, so that the address's subscriptions end too.
        saved = services.suppression_add(
            email=obj.email, reason=obj.reason, source=obj.source or f"admin ({request.user})"
        )
        obj.pk, obj.created_at = saved.pk, saved.created_at

    @admin.action(description="Lift the selected suppressions…", permissions=["change"])
    def lift(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        queryset = queryset.filter(lifted_at__isnull=True)
        form = LiftForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            lifted = sum(
                services.suppression_lift(
                    suppression=s, by=request.user, note=form.cleaned_data["note"]
                )
                for s in queryset
            )
            self.message_user(request, f"{lifted} suppressions lifted.")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Lift suppressions",
            "opts": self.model._meta,
            "form": form,
            "suppressions": queryset,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "subscriptions/admin/lift_suppressions.html", context)


# --- contact messages ---------------------------------------------------------------


@admin.register(ContactMessage)
class ContactMessageAdmin(admin.ModelAdmin):
    list_display = ("subject", "name", "email", "publication", "status", "created_at")
    list_filter = ("status", "publication", "created_at")
    list_select_related = ("publication",)
    search_fields = ("subject", "name", "email", "body")
    readonly_fields = ("name", "email", "publication", "subject", "body", "ip", "created_at")
    fields = ("status", *readonly_fields)
    actions = ["mark_answered"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Mark the selected messages answered", permissions=["change"])
    def mark_answered(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = queryset.filter(status=ContactMessage.Status.OPEN).update(
            status=ContactMessage.Status.ANSWERED
        )
        self.message_user(request, f"{done} marked answered.")
