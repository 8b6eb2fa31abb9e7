from django.apps import AppConfig
from django.db.models.signals import post_migrate


class IssuesConfig(AppConfig):
    name = "issues"
    verbose_name = "Editorial"

    def ready(self) -> None:
        from issues.permissions import ensure_groups_after_migrate

        post_migrate.connect(ensure_groups_after_migrate, sender=self)
