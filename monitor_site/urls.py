from django.contrib import admin
from django.urls import include, path

from delivery import webhooks
from monitor_site import views

admin.site.site_header = "Monitor"
admin.site.site_title = "Monitor admin"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/outbox/", views.outbox, name="outbox"),
    path("admin/outbox/<str:name>", views.outbox_message, name="outbox_message"),
    path("admin/", admin.site.urls),
    # anymail's webhooks; each refuses (403) while no ANYMAIL_WEBHOOK_SECRET is set
    path("anymail/", include((webhooks.urlpatterns(), "anymail"))),
    path("", include("subscriptions.urls")),
    # last: its patterns start with a publication slug
    path("", include("issues.urls")),
]
