"""Subscription staff, who handle bounces, see the bounce mailbox's messages."""

from django.db import migrations

from delivery.permissions import BOUNCE_LIST
from issues.permissions import migrate_groups

GROUPS = {"Subscription staff": BOUNCE_LIST}


def grant(apps, schema_editor):
    migrate_groups(apps, GROUPS, app_labels=["delivery"])


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.filter(name__in=GROUPS):
        group.permissions.remove(
            *group.permissions.filter(
                content_type__app_label="delivery",
                codename__in=[codename for _, codename in BOUNCE_LIST],
            )
        )


class Migration(migrations.Migration):
    dependencies = [("delivery", "0013_bounce_message_received_at_index")]

    operations = [migrations.RunPython(grant, revoke)]
