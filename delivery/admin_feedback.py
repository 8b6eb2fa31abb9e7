"""ESP feedback in the admin: deliveries, their events, and each subscriber's delivery
history. All read-only: these are records of what happened, changed only by the send
pipeline and the webhooks. (The suppression list is in subscriptions/admin.py.)

A subscriber's page shows the history to those who may view deliveries; the URL a reader
clicked, which may be their own unsubscribe or preferences link, only to those who may
see readers' links (READERS_LINKS)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html

from delivery.models import Delivery, DeliveryEvent
from delivery.permissions import READERS_LINKS
from subscriptions.admin import SubscriberAdmin
from subscriptions.models import Subscriber, Suppression

# Deliveries shown on a subscriber's page, newest first; the rest are one link away.
HISTORY_LIMIT = 50
ISSUE_RELATED = ("issue", "issue__publication", "issue__volume")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def clicked_url_hidden(request: HttpRequest, fields: tuple[str, ...]) -> tuple[str, ...]:
    """An event's fields without the clicked URL, unless the user may see readers' links."""
    if request.user.has_perm(READERS_LINKS):
        return fields
    return tuple(f for f in fields if f != "url")


class DeliveryEventInline(admin.TabularInline):
    model = DeliveryEvent
    fk_name = "delivery"
    extra = 0
    fields = ("occurred_at", "kind", "esp", "reject_reason", "description", "url", "received_at")
    readonly_fields = fields
    ordering = ("occurred_at", "id")
    can_delete = False

    def get_fields(self, request: HttpRequest, obj: object = None):
        return clicked_url_hidden(request, self.fields)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("email", "issue", "status", "attempts", "sent_at", "esp_message_id")
    # No filter by issue (a list of every issue ever sent); the Issue pages link here
    # with ?issue=<id>.
    list_filter = ("status", "issue__publication")
    list_select_related = ISSUE_RELATED
    search_fields = ("email", "esp_message_id")
    date_hierarchy = "sent_at"
    show_full_result_count = False  # a count of millions of rows on every page
    fields = (
        "issue",
        "subscriber",
        "subscription",
        "email",
        "status",
        "attempts",
        "sent_at",
        "next_attempt_at",
        "esp_message_id",
        "last_error",
        "created_at",
    )
    readonly_fields = fields
    inlines = [DeliveryEventInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related(*ISSUE_RELATED, "subscription")


@admin.register(DeliveryEvent)
class DeliveryEventAdmin(ReadOnlyAdmin):
    list_display = (
        "occurred_at",
        "kind",
        "email",
        "issue",
        "esp",
        "reject_reason",
        "delivery_link",
    )
    list_filter = ("kind", "esp", "reject_reason", "occurred_at")
    list_select_related = ISSUE_RELATED
    search_fields = ("email", "esp_message_id", "key")
    date_hierarchy = "occurred_at"
    show_full_result_count = False
    fields = (
        "key",
        "esp",
        "kind",
        "email",
        "issue",
        "delivery",
        "esp_message_id",
        "reject_reason",
        "description",
        "url",
        "occurred_at",
        "received_at",
    )
    readonly_fields = fields

    def get_fields(self, request: HttpRequest, obj: DeliveryEvent | None = None):
        return clicked_url_hidden(request, self.fields)

    @admin.display(description="delivery")
    def delivery_link(self, obj: DeliveryEvent) -> str:
        if obj.delivery_id is None:
            return "—"
        url = reverse("admin:delivery_delivery_change", args=[obj.delivery_id])
        return format_html('<a href="{}">#{}</a>', url, obj.delivery_id)


# --- each subscriber's delivery history, on the Subscriber page --------------------------


def delivery_history(subscriber: Subscriber, *, limit: int = HISTORY_LIMIT) -> dict:
    """The subscriber's latest deliveries with their ESP events, and the address's
    suppressions: three queries whatever the length of the history."""
    deliveries = list(
        subscriber.deliveries.select_related(*ISSUE_RELATED)
        .prefetch_related(
            Prefetch("events", queryset=DeliveryEvent.objects.order_by("occurred_at", "id"))
        )
        .order_by("-created_at", "-id")[: limit + 1]
    )
    suppressions = list(Suppression.objects.matching(subscriber.email).select_related("lifted_by"))
    return {
        "deliveries": deliveries[:limit],
        "more": len(deliveries) > limit,
        "suppressions": suppressions,
        "subscriber": subscriber,
    }


class SubscriberWithHistoryAdmin(SubscriberAdmin):
    readonly_fields = (*SubscriberAdmin.readonly_fields, "delivery_history")

    def get_fieldsets(self, request: HttpRequest, obj: Subscriber | None = None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not request.user.has_perm("delivery.view_delivery"):
            return fieldsets
        return (*fieldsets, ("Delivery history", {"fields": ("delivery_history",)}))

    @admin.display(description="Deliveries and ESP events")
    def delivery_history(self, obj: Subscriber) -> str:
        context = delivery_history(obj)
        context["deliveries_url"] = reverse("admin:delivery_delivery_changelist")
        context["events_url"] = reverse("admin:delivery_deliveryevent_changelist")
        context["suppressions_url"] = reverse("admin:subscriptions_suppression_changelist")
        return render_to_string("delivery/admin/feedback/delivery_history.html", context)


admin.site.unregister(Subscriber)
admin.site.register(Subscriber, SubscriberWithHistoryAdmin)
