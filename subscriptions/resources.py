"""django-import-export resources: the admin's import (with a dry-run preview) and
export, with the same rules and columns as the import_subscribers and
export_subscribers commands."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils import timezone
from import_export import fields, resources

from issues.models import Publication
from monitor_site.csvcells import safe_cell
from subscriptions import invitations, services
from subscriptions.models import Subscriber, Subscription, SubscriptionEvent, validate_single_line


class SubscriberImportResource(resources.ModelResource):
    """Rows `email,name,organization[,fax,postal_address]` into one publication.

    A known person is matched by address (case-insensitive) and only has blank details
    filled in; the subscription is added if missing and never revived if it ended; a
    suppressed address is skipped. Without `confirmed` new subscriptions are pending
    and get one confirmation email (an invitation for the legacy lists), sent only when
    the import is confirmed (a dry run rolls back, and with it the emails queued for
    after commit). Offline readers (no address) go through import_subscribers."""

    def __init__(
        self,
        publication: Publication | None = None,
        confirmed: bool = False,
        source: str = Subscriber.Source.IMPORT,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.publication = publication
        self.confirmed = confirmed
        self.source = source

    class Meta:
        model = Subscriber
        fields = ("email", "name", "organization", "fax", "postal_address")
        import_id_fields = ("email",)
        skip_unchanged = True
        report_skipped = True
        clean_model_instances = True

    def before_import_row(self, row, **kwargs) -> None:
        for key in ("email", "name", "organization", "fax", "postal_address"):
            if row.get(key) is None:
                row[key] = ""
            row[key] = str(row[key]).strip()
        row["email"] = row["email"].lower()

    def import_instance(self, instance, row, **kwargs) -> None:
        existing = instance.pk is not None
        for field in self.get_import_fields():
            if existing and getattr(instance, field.attribute, ""):
                continue  # a known person's details are only filled in
            self.import_field(field, instance, row, **kwargs)
        if not existing:
            instance.source = self.source
            instance.consent_form = "admin import" + (" (confirmed)" if self.confirmed else "")

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        errors = dict(import_validation_errors or {})
        if not instance.email:
            errors["email"] = [
                "An email address is required here; import fax and postal readers with "
                "the import_subscribers command."
            ]
        for name in ("name", "organization", "fax"):
            try:
                validate_single_line(getattr(instance, name))
            except ValidationError as exc:
                errors[name] = exc.messages
        super().validate_instance(instance, errors, validate_unique)

    def skip_row(self, instance, original, row, import_validation_errors=None) -> bool:
        if services.is_suppressed(instance.email):
            return True
        if (
            instance.pk
            and not Subscription.objects.filter(
                subscriber=instance, publication=self.publication
            ).exists()
        ):
            return False
        return super().skip_row(instance, original, row, import_validation_errors)

    def after_save_instance(self, instance, row, **kwargs) -> None:
        confirmed = self.confirmed
        subscription, new = Subscription.objects.get_or_create(
            subscriber=instance,
            publication=self.publication,
            defaults={
                "status": Subscription.Status.ACTIVE if confirmed else Subscription.Status.PENDING,
                "confirmed_at": timezone.now() if confirmed else None,
            },
        )
        if new:
            SubscriptionEvent.objects.create(
                subscription=subscription,
                to_status=subscription.status,
                reason="admin import" + (" (confirmed)" if confirmed else ""),
            )
            if not confirmed:
                invitations.permission_request(subscriptions=[subscription], source=self.source)


class SubscriptionExportResource(resources.ModelResource):
    """The columns of export_subscribers (SPEC §3), every cell escaped as the command's
    (not by IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT, which only drops a leading `=`)."""

    email = fields.Field(attribute="subscriber__email", column_name="email")
    name = fields.Field(attribute="subscriber__name", column_name="name")
    organization = fields.Field(attribute="subscriber__organization", column_name="organization")
    publication = fields.Field(attribute="publication__slug", column_name="publication")
    status = fields.Field(attribute="export_status", column_name="status")
    confirmed_at = fields.Field(column_name="confirmed_at")
    source = fields.Field(attribute="subscriber__source", column_name="source")
    join_code = fields.Field(attribute="export_join_code", column_name="join_code")

    class Meta:
        model = Subscription
        fields = (
            "email",
            "name",
            "organization",
            "publication",
            "status",
            "confirmed_at",
            "source",
            "join_code",
        )
        export_order = fields

    def export_field(self, field, instance, **kwargs):
        return safe_cell(super().export_field(field, instance, **kwargs))

    def dehydrate_email(self, subscription: Subscription) -> str:
        return subscription.subscriber.email or ""

    def dehydrate_confirmed_at(self, subscription: Subscription) -> str:
        return subscription.confirmed_at.isoformat() if subscription.confirmed_at else ""
