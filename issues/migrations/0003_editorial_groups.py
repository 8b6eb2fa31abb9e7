"""The "Analysts" and "Editors" groups and what each may do (SPEC section 6)."""

from django.db import migrations

from issues.permissions import GROUPS, migrate_groups, unmigrate_groups


def create_groups(apps, schema_editor):
    migrate_groups(apps, GROUPS, app_labels=["issues"])


def remove_groups(apps, schema_editor):
    unmigrate_groups(apps, GROUPS)


class Migration(migrations.Migration):
    dependencies = [
        ("issues", "0002_editorial_fields"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
