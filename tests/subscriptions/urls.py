"""The site's URLs without the issues app, for when it cannot be imported yet."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("subscriptions.urls")),
]
