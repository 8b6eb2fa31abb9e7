"""The editorial admin: issues with their articles inline, workflow buttons, audit log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from issues import services
from issues.markdown import IMAGE_SOURCES, render_markdown
from issues.models import Article, Issue, IssueEvent, MastheadMember, Publication, Volume
from issues.printing import issue_pdf
from monitor_site.sandboxed import sandboxed_document


@sandboxed_document(img_src=IMAGE_SOURCES)
def markdown_preview(request: HttpRequest, text: str, *, title: str) -> HttpResponse:
    """Markdown rendered as the archive shows it (render_markdown, the site's stylesheet),
    as a document of its own for a sandboxed frame: what any preview of editor text
    answers with."""
    return render(
        request,
        "issues/admin/markdown_preview.html",
        {"title": title, "html": mark_safe(render_markdown(text))},  # noqa: S308 - sanitized
    )


def local_time(at: datetime | None) -> str:
    """A moment as the office reads it: its time in TIME_ZONE, with the zone's name."""
    if at is None:
        return "-"
    return f"{timezone.localtime(at):%Y-%m-%d %H:%M} {timezone.get_current_timezone_name()}"


@sandboxed_document(img_src=[])
def text_preview(request: HttpRequest, text: str, *, title: str) -> HttpResponse:
    """Plain text (an email's text part) as a document of its own for a sandboxed frame."""
    return render(request, "issues/admin/text_preview.html", {"title": title, "text": text})


# The live preview renders what the analyst is typing; a body longer than this is refused.
PREVIEW_MAX_CHARS = 200_000


class MastheadInline(admin.TabularInline):
    model = MastheadMember
    extra = 0
    fields = ("position", "name", "role")


@admin.register(Publication)
class PublicationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "sender_email", "active")
    list_filter = ("active",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MastheadInline]
    fieldsets = [
        (None, {"fields": ("name", "slug", "description", "active")}),
        ("Sending", {"fields": ("sender_name", "sender_email", "reply_to", "list_id_domain")}),
        (
            "Delivery",
            {"fields": ("messages_per_second", "requires_approval", "track_opens", "track_clicks")},
        ),
        (
            "Moving legacy readers to email",
            {"fields": ("invitation_first_reminder_days", "invitation_second_reminder_days")},
        ),
        (
            "Publisher and footer",
            {
                "fields": (
                    "publisher_name",
                    "contact_email",
                    "contact_fax",
                    "contact_postal_address",
                    "notice",
                )
            },
        ),
    ]


@admin.register(Volume)
class VolumeAdmin(admin.ModelAdmin):
    list_display = ("__str__", "publication", "number", "year")
    list_filter = ("publication",)
    list_select_related = ("publication",)
    ordering = ("publication__name", "-number")


class ArticleInline(admin.StackedInline):
    model = Article
    extra = 0
    fields = ("position", "headline", "slug", "body", "preview", "summary", "authors", "regions")
    readonly_fields = ("preview",)
    prepopulated_fields = {"slug": ("headline",)}

    @admin.display(description="Rendered (as saved)")
    def preview(self, article: Article) -> str:
        if not article.pk:
            return "Shown here once saved."
        # In a sandboxed frame, not in this page: nothing in the body can reach the admin.
        return format_html(
            '<iframe class="article-preview" sandbox title="{}" src="{}"></iframe>',
            f"{article.headline or 'Article'}, rendered",
            reverse("admin:issues_issue_article_preview", args=[article.issue_id, article.pk]),
        )

    class Media:
        js = ["article-preview.js"]

    def get_formset(self, request: HttpRequest, obj: Issue | None = None, **kwargs):
        """The body's textarea says where its live preview comes from (article-preview.js)."""
        formset = super().get_formset(request, obj, **kwargs)
        body = formset.form.base_fields.get("body")
        if body is not None:
            body.widget.attrs.update(
                {
                    "data-preview-url": reverse("admin:issues_issue_live_preview"),
                    "data-preview-issue": obj.pk if obj is not None else "",
                    "rows": 16,
                }
            )
        return formset

    def get_extra(self, request: HttpRequest, obj: Issue | None = None, **kwargs) -> int:
        return 1 if obj is None else 0

    def has_add_permission(self, request: HttpRequest, obj: Issue | None = None) -> bool:
        return (obj is None or obj.is_editable) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Issue | None = None) -> bool:
        return (obj is None or obj.is_editable) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Issue | None = None) -> bool:
        return (obj is None or obj.is_editable) and super().has_delete_permission(request, obj)


class IssueEventInline(admin.TabularInline):
    """The audit log: read-only, written only by the workflow services."""

    model = IssueEvent
    extra = 0
    fields = ("at", "from_status", "to_status", "by", "note")
    readonly_fields = fields
    verbose_name = "status change"
    verbose_name_plural = "Status changes"
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[IssueEvent]:
        # its label names the issue: fetch that (and what the label needs) along
        return (
            super()
            .get_queryset(request)
            .select_related("by", "issue__publication", "issue__volume")
        )

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


TRANSITIONS = {
    "submit": (
        "Submit for review",
        lambda issue, user, note: services.issue_submit(issue=issue, by=user),
    ),
    "approve": ("Approve", lambda issue, user, note: services.issue_approve(issue=issue, by=user)),
    "return_to_draft": (
        "Return to draft",
        lambda issue, user, note: services.issue_return_to_draft(issue=issue, by=user, note=note),
    ),
}


@admin.register(Issue)
class IssueAdmin(admin.ModelAdmin):
    change_form_template = "issues/admin/issue_change_form.html"
    list_display = ("__str__", "title", "status", "date", "scheduled", "sent")
    list_display_links = ("__str__",)
    list_filter = ("status", "publication", "volume__year")
    list_select_related = ("publication", "volume")
    search_fields = ("title", "articles__headline", "=number")
    date_hierarchy = "date"
    fields = (
        "publication",
        "volume",
        "number",
        "date",
        "title",
        "status",
        "scheduled",
        "sent",
    )
    readonly_fields = ("status", "scheduled", "sent")
    inlines = [ArticleInline, IssueEventInline]
    ordering = ("-date", "-volume__number", "-number")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Issue]:
        return super().get_queryset(request).select_related("publication", "volume")

    @admin.display(description="Scheduled for", ordering="scheduled_at")
    def scheduled(self, issue: Issue) -> str:
        return local_time(issue.scheduled_at)

    @admin.display(description="Sent at", ordering="sent_at")
    def sent(self, issue: Issue) -> str:
        return local_time(issue.sent_at)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "volume":
            # a volume's label names its publication: fetch them together
            kwargs["queryset"] = Volume.objects.select_related("publication")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, object]:
        """Suggest the current volume and the next number in it."""
        initial = super().get_changeform_initial_data(request)
        volume = None
        if initial.get("volume"):
            volume = Volume.objects.filter(pk=initial["volume"]).first()
        else:
            publications = Publication.objects.filter(active=True)
            if initial.get("publication"):
                publications = publications.filter(pk=initial["publication"])
            publication = publications.first() if publications.count() == 1 else None
            if publication is not None:
                volume = publication.volumes.order_by("-number").first()
                initial.setdefault("publication", publication.pk)
        if volume is not None:
            initial.setdefault("publication", volume.publication_id)
            initial["volume"] = volume.pk
            initial.setdefault("number", Issue.next_number(volume))
        return initial

    def has_change_permission(self, request: HttpRequest, obj: Issue | None = None) -> bool:
        # Approved and later, what was approved is what goes out: read-only here.
        return (obj is None or obj.is_editable) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Issue | None = None) -> bool:
        return (obj is None or obj.status == Issue.Status.DRAFT) and super().has_delete_permission(
            request, obj
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            names = services.allowed_transitions(issue=obj, user=request.user)
            context["workflow_actions"] = [
                {
                    "name": name,
                    "label": TRANSITIONS[name][0],
                    "url": reverse("admin:issues_issue_transition", args=[obj.pk, name]),
                }
                for name in names
            ]
            context["workflow_issue"] = obj
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        return [
            path(
                "<int:object_id>/transition/<str:name>/",
                self.admin_site.admin_view(self.transition_view),
                name="issues_issue_transition",
            ),
            path(
                "<int:object_id>/articles/<int:article_id>/preview/",
                self.admin_site.admin_view(self.article_preview_view),
                name="issues_issue_article_preview",
            ),
            path(
                "live-preview/",
                self.admin_site.admin_view(self.live_preview_view),
                name="issues_issue_live_preview",
            ),
            path(
                "<int:object_id>/print/",
                self.admin_site.admin_view(self.print_view),
                name="issues_issue_print",
            ),
            *super().get_urls(),
        ]

    def article_preview_view(self, request: HttpRequest, object_id: int, article_id: int):
        """An article's saved body, rendered, for the frame on the issue's page."""
        article = get_object_or_404(
            Article.objects.select_related("issue"), pk=article_id, issue_id=object_id
        )
        if not self.has_view_permission(request, article.issue):
            raise PermissionDenied
        return markdown_preview(request, article.body, title=str(article))

    def preview_renderings(self) -> dict[str, Callable[..., HttpResponse]]:
        """The renderings the live preview offers, by the `mode` it posts: each takes the
        request, the issue (None on the add page), the headline and the Markdown body.
        The editorial admin has the archive's; the sending admin adds the email's."""
        return {
            "web": lambda request, *, issue, headline, body: markdown_preview(
                request, body, title=f"{headline or 'Article'}, as on the web"
            )
        }

    def live_preview_view(self, request: HttpRequest) -> HttpResponse:
        """POST (CSRF-checked, staff who may add or change issues): the Markdown being
        typed, rendered as `mode` asks, saving nothing. For the article form's preview."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        renderings = self.preview_renderings()
        mode = request.POST.get("mode", "web")
        body = request.POST.get("text", "")
        if mode not in renderings:
            return HttpResponseBadRequest("Unknown preview mode.")
        if len(body) > PREVIEW_MAX_CHARS:
            return HttpResponseBadRequest(
                f"The article is longer than {PREVIEW_MAX_CHARS:,} characters: too long to preview."
            )
        issue = None
        if (issue_id := request.POST.get("issue", "")).isdigit():
            issue = (
                Issue.objects.select_related("publication", "volume").filter(pk=issue_id).first()
            )
        headline = " ".join(request.POST.get("headline", "").split())[:300]
        return renderings[mode](request, issue=issue, headline=headline, body=body)

    def print_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The print edition as a PDF download, for whoever may view the issue."""
        issue = get_object_or_404(
            Issue.objects.select_related("publication", "volume"), pk=object_id
        )
        if not self.has_view_permission(request, issue):
            raise PermissionDenied
        filename = f"{issue.publication.slug}-{issue.volume.number}-{issue.number}.pdf"
        return HttpResponse(
            issue_pdf(issue),
            content_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    def transition_view(self, request: HttpRequest, object_id: int, name: str):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        issue = get_object_or_404(
            Issue.objects.select_related("publication", "volume"), pk=object_id
        )
        change_url = reverse("admin:issues_issue_change", args=[issue.pk])
        if name not in TRANSITIONS or not self.has_view_permission(request, issue):
            self.message_user(request, "Unknown action.", messages.ERROR)
            return HttpResponseRedirect(change_url)
        label, action = TRANSITIONS[name]
        try:
            action(issue, request.user, request.POST.get("note", ""))
        except services.WorkflowError as exc:
            self.message_user(request, f"{label}: {exc}", messages.ERROR)
        else:
            self.message_user(
                request, f"{issue} is now {issue.get_status_display().lower()}.", messages.SUCCESS
            )
        return HttpResponseRedirect(change_url)
