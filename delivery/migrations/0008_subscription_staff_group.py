"""The "Subscription staff" group and what it may do (delivery/permissions.py)."""

from django.db import migrations

from delivery.permissions import BOUNCE_LIST, SUBSCRIPTION_STAFF_PERMISSIONS
from issues.permissions import migrate_groups, unmigrate_groups

# What the group held then: the bounce list came with 0014.
GROUPS = {
    "Subscription staff": [p for p in SUBSCRIPTION_STAFF_PERMISSIONS if p not in BOUNCE_LIST]
}


def create_groups(apps, schema_editor):
    migrate_groups(apps, GROUPS, app_labels=["subscriptions", "delivery"])


def remove_groups(apps, schema_editor):
    unmigrate_groups(apps, GROUPS)


class Migration(migrations.Migration):
    dependencies = [
        ("delivery", "0007_outbox_permission"),
        ("subscriptions", "0002_requests_events_contact"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
