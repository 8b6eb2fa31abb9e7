from __future__ import annotations

from datetime import datetime, time

from django.contrib.syndication.views import Feed
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.feedgenerator import Atom1Feed
from django.utils.html import escape

from issues.models import Issue, Publication

FEED_LENGTH = 20


class IssueFeed(Feed):
    """Atom feed of a publication's sent issues, newest first, full text. Three queries."""

    feed_type = Atom1Feed

    def get_object(self, request: HttpRequest, pub: str) -> Publication:
        return get_object_or_404(Publication, slug=pub, active=True)

    def title(self, obj: Publication) -> str:
        return obj.name

    def subtitle(self, obj: Publication) -> str:
        return obj.description or f"Issues of {obj.name}"

    def link(self, obj: Publication) -> str:
        return obj.get_absolute_url()

    def author_name(self, obj: Publication) -> str:
        return obj.publisher_name or obj.name

    def feed_copyright(self, obj: Publication) -> str:
        return obj.notice

    def items(self, obj: Publication) -> list[Issue]:
        issues = list(
            Issue.objects.sent()
            .filter(publication=obj)
            .select_related("volume")
            .prefetch_related("articles")[:FEED_LENGTH]
        )
        for issue in issues:
            issue.publication = obj
        return issues

    def item_title(self, item: Issue) -> str:
        return str(item) if not item.title else f"{item}: {item.title}"

    def item_description(self, item: Issue) -> str:
        parts = []
        for article in item.articles.all():
            if article.headline:
                parts.append(f"<h2>{escape(article.headline)}</h2>")
            parts.append(article.body_html)
        return "\n".join(parts)

    def item_pubdate(self, item: Issue) -> datetime:
        if item.date:
            return datetime.combine(item.date, time(12), tzinfo=timezone.get_current_timezone())
        return item.sent_at or item.created_at

    def item_updateddate(self, item: Issue) -> datetime:
        return item.updated_at
