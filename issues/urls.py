from __future__ import annotations

from django.urls import path, register_converter

from issues import views
from issues.feeds import IssueFeed
from issues.models import RESERVED_SLUGS


class PublicationSlugConverter:
    """A publication slug, never one of the site's own first path segments."""

    regex = "(?!(?:{})(?:/|$))[-a-zA-Z0-9_]+".format("|".join(sorted(RESERVED_SLUGS)))

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(PublicationSlugConverter, "pub")

app_name = "issues"
urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("<pub:pub>/", views.archive, name="archive"),
    path("<pub:pub>/feed/", IssueFeed(), name="feed"),
    path("<pub:pub>/<int:volume>/", views.archive, name="volume"),
    path("<pub:pub>/<int:volume>/<int:number>/", views.issue_detail, name="issue"),
]
