from django.apps import AppConfig


class MonitorSiteConfig(AppConfig):
    name = "monitor_site"
    verbose_name = "Site"
