from django.apps import AppConfig


class IssuesConfig(AppConfig):
    name = "issues"
    verbose_name = "Editorial"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from issues.permissions import GROUPS, keep_groups
        from issues.search import archive_changed

        keep_groups(self, GROUPS)
        # Saves and deletes through the ORM; the workflow calls it when an issue is sent.
        for name in ("Publication", "Volume", "Issue", "Article"):
            model = self.get_model(name)
            post_save.connect(archive_changed, sender=model, dispatch_uid=f"search-{name}-save")
            post_delete.connect(archive_changed, sender=model, dispatch_uid=f"search-{name}-del")
