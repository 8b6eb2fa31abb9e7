"""The bounce mailbox in the admin: every message process_bounces read, what came of it,
and for those kept aside, why and where they are now. Read-only: a record of what
happened (delivery/bounces.py)."""

from __future__ import annotations

from django.contrib import admin

from delivery.admin_feedback import ReadOnlyAdmin
from delivery.models import BounceMessage


@admin.register(BounceMessage)
class BounceMessageAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "outcome", "subject", "reason", "events", "source")
    list_filter = ("outcome", "source", "received_at")
    search_fields = ("key", "subject", "reason")
    date_hierarchy = "received_at"
    fields = (
        "key",
        "source",
        "outcome",
        "reason",
        "subject",
        "size",
        "events",
        "kept_in",
        "received_at",
    )
    readonly_fields = fields
