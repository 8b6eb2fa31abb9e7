from django.apps import AppConfig


class IssuesConfig(AppConfig):
    name = "issues"
    verbose_name = "Editorial"

    def ready(self) -> None:
        from issues.permissions import GROUPS, keep_groups

        keep_groups(self, GROUPS)
