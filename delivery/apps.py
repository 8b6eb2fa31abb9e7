from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "delivery"

    def ready(self) -> None:
        from anymail.signals import tracking

        from delivery import health, receivers
        from delivery.permissions import GROUPS
        from issues.permissions import keep_groups
        from monitor_site import health as site_health
        from subscriptions.erasure import reader_erasing
        from subscriptions.readerdata import reader_data_collected

        tracking.connect(
            receivers.tracking_event_received, dispatch_uid="delivery.tracking_event_received"
        )
        reader_data_collected.connect(
            receivers.reader_data_collected, dispatch_uid="delivery.reader_data_collected"
        )
        reader_erasing.connect(receivers.reader_erasing, dispatch_uid="delivery.reader_erasing")
        keep_groups(self, GROUPS)
        site_health.register("delivery", health.healthz)
