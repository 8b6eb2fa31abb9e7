"""Groups of staff and what each may do: the "Analysts" and "Editors" groups (SPEC
section 6), and the functions that make any app's groups, in a migration and again after
a flush. An app defines its groups where it can name every permission they grant."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.apps import AppConfig
from django.apps import apps as global_apps
from django.db.models.signals import post_migrate

Groups = Mapping[str, Iterable[tuple[str, str]]]

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
GROUPS: Groups = {"Analysts": ANALYST_PERMISSIONS, "Editors": EDITOR_PERMISSIONS}


def ensure_groups(groups: Groups, *, apps=global_apps) -> None:
    """Create the groups and give them their permissions; running it again changes
    nothing. `apps` is the migration's app registry when called from one."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in groups.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in wanted:
            permission = Permission.objects.get(
                content_type__app_label=app_label, codename=codename
            )
            group.permissions.add(permission)


def migrate_groups(apps, groups: Groups, *, app_labels: Iterable[str]) -> None:
    """A migration's step that creates `groups`, whose permissions belong to `app_labels`.

    Permissions are normally created after all migrations have run; the migration needs
    them now, on a fresh database too. (A historical app config has no models module,
    which create_permissions takes for "nothing to do"; say otherwise for the duration
    of the call.)"""
    from django.contrib.auth.management import create_permissions

    for label in app_labels:
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            app_config.models_module = None
    ensure_groups(groups, apps=apps)


def unmigrate_groups(apps, groups: Groups) -> None:
    apps.get_model("auth", "Group").objects.filter(name__in=groups).delete()


def keep_groups(app_config: AppConfig, groups: Groups) -> None:
    """Make `groups` again whenever `app_config` is migrated: a flushed database (tests,
    `manage.py flush`) gets its groups back, as it gets its permissions back. Call it
    from the app's ready(); the app's permissions exist by the time it runs."""

    def receiver(sender: AppConfig, using: str = "default", **kwargs: object) -> None:
        if using == "default":
            ensure_groups(groups)

    post_migrate.connect(
        receiver, sender=app_config, weak=False, dispatch_uid=f"{app_config.label}.groups"
    )
