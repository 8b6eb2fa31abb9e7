from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"

    def ready(self) -> None:
        from django.core import checks
        from django.db.models.signals import post_migrate

        from subscriptions import hashing

        checks.register(hashing.check_erased_keys, checks.Tags.database)
        post_migrate.connect(
            _refresh_hashes, sender=self, dispatch_uid="subscriptions.refresh_hashes"
        )


def _refresh_hashes(sender: AppConfig, using: str = "default", **kwargs: object) -> None:
    """After every migrate: the stored address hashes follow a changed SECRET_KEY."""
    from subscriptions import hashing

    if using == "default":
        hashing.hashes_refresh()
