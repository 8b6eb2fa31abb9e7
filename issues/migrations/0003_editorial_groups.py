"""The "Analysts" and "Editors" groups and what each may do (SPEC section 6)."""

from django.db import migrations

from issues.permissions import GROUPS, ensure_groups


def create_groups(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations have run; this migration
    # needs them now, on a fresh database too.
    # (A historical app config has no models module, which create_permissions takes
    # for "nothing to do"; say otherwise for the duration of the call.)
    app_config = apps.get_app_config("issues")
    app_config.models_module = True
    try:
        create_permissions(app_config, apps=apps, verbosity=0)
    finally:
        app_config.models_module = None

    ensure_groups(apps=apps)


def remove_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("issues", "0002_editorial_fields"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
