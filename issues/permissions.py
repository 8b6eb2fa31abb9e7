"""The "Analysts" and "Editors" groups and what each may do (SPEC section 6)."""

from __future__ import annotations

from django.apps import apps as global_apps

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
EDITOR_PERMISSIONS = [
    *ANALYST_PERMISSIONS,
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


def ensure_groups(*, apps=global_apps) -> None:
    """Create the groups and give them their permissions; running it again changes
    nothing. `apps` is the migration's app registry when called from one."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in wanted:
            permission = Permission.objects.get(
                content_type__app_label=app_label, codename=codename
            )
            group.permissions.add(permission)


def ensure_groups_after_migrate(sender, **kwargs) -> None:
    """post_migrate: a flushed database (tests, `manage.py flush`) gets its groups back,
    as it gets its permissions back."""
    if kwargs.get("using", "default") == "default":
        ensure_groups()
