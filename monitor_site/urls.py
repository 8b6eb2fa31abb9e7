from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from monitor_site import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("anymail/", include("anymail.urls"))
    if settings.WEBHOOKS_ENABLED
    else re_path(r"^anymail/", csrf_exempt(views.webhooks_refused)),
    path("", include("subscriptions.urls")),
    # last: its patterns start with a publication slug
    path("", include("issues.urls")),
]
