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


def _refresh_hashes(sender: AppConfig, using: str = "default", apps=None, **kwargs: object) -> None:
    """After every migrate (and flush): the stored address hashes follow a changed
    SECRET_KEY. Not while the database is migrated back to before they existed."""
    from django.apps import apps as installed

    from subscriptions import hashing

    migrated = (apps or installed).get_model("subscriptions", "Suppression")
    if using == "default" and any(f.name == "key_id" for f in migrated._meta.get_fields()):
        hashing.hashes_refresh()
