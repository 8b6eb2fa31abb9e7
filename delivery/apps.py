from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "delivery"

    def ready(self) -> None:
        from anymail.signals import tracking

        from delivery import health, receivers
        from delivery.permissions import GROUPS
        from issues.permissions import keep_groups
        from monitor_site import health as site_health

        tracking.connect(
            receivers.tracking_event_received, dispatch_uid="delivery.tracking_event_received"
        )
        keep_groups(self, GROUPS)
        site_health.register("delivery", health.healthz)
