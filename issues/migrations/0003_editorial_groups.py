"""The "Analysts" and "Editors" groups and what each may do (SPEC section 6)."""

from django.db import migrations

ANALYST_PERMISSIONS = [
    ("issues", "view_publication"),
    ("issues", "view_mastheadmember"),
    ("issues", "view_volume"),
    ("issues", "add_volume"),
    ("issues", "view_issue"),
    ("issues", "add_issue"),
    ("issues", "change_issue"),
    ("issues", "submit_issue"),
    ("issues", "view_article"),
    ("issues", "add_article"),
    ("issues", "change_article"),
    ("issues", "delete_article"),
    ("issues", "view_issueevent"),
]
EDITOR_PERMISSIONS = ANALYST_PERMISSIONS + [
    ("issues", "change_publication"),
    ("issues", "add_mastheadmember"),
    ("issues", "change_mastheadmember"),
    ("issues", "delete_mastheadmember"),
    ("issues", "change_volume"),
    ("issues", "delete_issue"),
    ("issues", "approve_issue"),
    ("issues", "send_issue"),
]
GROUPS = {"Analysts": ANALYST_PERMISSIONS, "Editors": EDITOR_PERMISSIONS}


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

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in wanted:
            permission = Permission.objects.get(
                content_type__app_label=app_label, codename=codename
            )
            group.permissions.add(permission)


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
