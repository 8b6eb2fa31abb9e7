"""Sending issues from the admin: preview, test, preflight, send, schedule, progress, report.

`issues` may not import `delivery`, so the Issue admin is extended here: the editorial
admin is unregistered and registered again with the sending pages and buttons.

Who may do what: anyone who may view issues (analysts too) sees the preview, the
preflight checks, the progress and the report; every action that sends, schedules or
stops a send needs `issues.send_issue` (editors). The list of failed recipients, being
people's addresses, needs that permission or `delivery.view_delivery`."""

from __future__ import annotations

from csp.constants import UNSAFE_INLINE
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerDown

from delivery import health, preflight, progress, reports, services
from delivery.models import DeliveryEvent, SendJob
from delivery.rendering import RenderedIssue, article_preview, sample_recipient
from issues import admin as issues_admin
from issues import services as editorial
from issues.models import Issue, Publication, Volume
from monitor_site import charts
from monitor_site.sandboxed import sandboxed_document

SEND = editorial.SEND
# Statuses in which an issue has not gone out yet: the preview page runs preflight.
BEFORE_SENDING = (
    Issue.Status.DRAFT,
    Issue.Status.IN_REVIEW,
    Issue.Status.APPROVED,
    Issue.Status.SCHEDULED,
)
# The change form runs it (four queries and a render) only once the content is up for
# review or about to go: a draft's page stays as light as the editorial admin made it.
PREFLIGHT_ON_CHANGE_FORM = (Issue.Status.IN_REVIEW, Issue.Status.APPROVED, Issue.Status.SCHEDULED)
STARTABLE = (Issue.Status.APPROVED, Issue.Status.SCHEDULED)
FAILED_SHOWN = 100  # failed recipients listed on the report page; the CSV has them all
POLL_SECONDS = 3


class ScheduleForm(forms.Form):
    at = forms.DateTimeField(
        label="Send at",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"required": "give a date and a time to send at."},
    )

    def clean_at(self):
        """A time in the office's zone (TIME_ZONE), still to come."""
        at = self.cleaned_data["at"]
        if at <= timezone.now():
            local = timezone.localtime(at)
            raise forms.ValidationError(
                f"{local:%Y-%m-%d %H:%M} {timezone.get_current_timezone_name()} is in the "
                "past; choose a later time."
            )
        return at

    def error_text(self) -> str:
        return " ".join(str(e).rstrip(".") + "." for e in self.errors.get("at", []))


class CancelForm(forms.Form):
    note = forms.CharField(max_length=1000, strip=True)


class SendingIssueAdmin(issues_admin.IssueAdmin):
    change_form_template = "delivery/admin/sending/issue_change_form.html"

    # --- URLs ---------------------------------------------------------------------

    def get_urls(self):
        def view(func, name: str):
            return path(
                f"<int:object_id>/{name}/",
                self.admin_site.admin_view(func),
                name=f"issues_issue_{name.replace('/', '_').replace('.', '_')}",
            )

        return [
            view(self.preview_view, "preview"),
            view(self.preview_html_view, "preview/html"),
            view(self.test_view, "test"),
            view(self.send_view, "send"),
            view(self.schedule_view, "schedule"),
            view(self.unschedule_view, "unschedule"),
            view(self.pause_view, "pause"),
            view(self.resume_view, "resume"),
            view(self.cancel_view, "cancel"),
            view(self.progress_view, "progress.json"),
            view(self.report_view, "report"),
            view(self.failed_csv_view, "report/failed.csv"),
            *super().get_urls(),
        ]

    # --- helpers ------------------------------------------------------------------

    def _viewable(self, request: HttpRequest, object_id: int) -> Issue:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(
            Issue.objects.select_related("publication", "volume", "send_job"), pk=object_id
        )

    def _sendable(self, request: HttpRequest, object_id: int) -> Issue:
        """The issue, for a POST by someone who may send; anyone else is refused."""
        if not request.user.has_perm(SEND):
            raise PermissionDenied
        return self._viewable(request, object_id)

    @staticmethod
    def _job(issue: Issue) -> SendJob | None:
        try:
            return issue.send_job
        except SendJob.DoesNotExist:
            return None

    @staticmethod
    def _change_url(issue: Issue) -> str:
        return reverse("admin:issues_issue_change", args=[issue.pk])

    def _context(self, request: HttpRequest, issue: Issue, title: str, **extra) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "subtitle": str(issue),
            "issue": issue,
            "change_url": self._change_url(issue),
            "can_send": request.user.has_perm(SEND),
            **extra,
        }

    # --- the change form's sending panel -------------------------------------------

    def get_queryset(self, request: HttpRequest):
        # the sending panel reads the send job: fetch it with the issue
        return super().get_queryset(request).select_related("send_job")

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            job = self._job(obj)
            context["sending"] = {
                "can_send": request.user.has_perm(SEND),
                "job": job,
                "progress": progress.progress_snapshot(job=job) if job else None,
                "warning": health.issue_warning(issue=obj, job=job),
                "checks": (
                    preflight.preflight(obj) if obj.status in PREFLIGHT_ON_CHANGE_FORM else None
                ),
                "startable": obj.status in STARTABLE,
                "schedule_form": ScheduleForm() if obj.status == Issue.Status.APPROVED else None,
                "cancel_form": CancelForm() if obj.status == Issue.Status.SENDING else None,
                "poll_seconds": POLL_SECONDS,
                "tz": timezone.get_current_timezone_name(),
            }
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- preview ------------------------------------------------------------------

    def preview_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        issue = self._viewable(request, object_id)
        rendered = RenderedIssue(issue)
        sample = sample_recipient()
        return TemplateResponse(
            request,
            "delivery/admin/sending/preview.html",
            self._context(
                request,
                issue,
                f"Preview of {issue}",
                rendered=rendered,
                sample=sample,
                message_id=rendered.message_id(sample),
                text=rendered.text.fill(sample),
                html_size_kb=rendered.html_size() / 1024,
                checks=preflight.preflight(issue) if issue.status in BEFORE_SENDING else None,
            ),
        )

    # Editor content is sanitized already; the sandbox keeps any slip from running here.
    # The email's CSS is inlined into style attributes, and its images may be anywhere.
    @sandboxed_document(img_src=["*", "data:"], style_src=[UNSAFE_INLINE])
    def preview_html_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The HTML part, exactly as a subscriber gets it, for the preview's iframe."""
        issue = self._viewable(request, object_id)
        html = RenderedIssue(issue).html.fill(sample_recipient())
        return HttpResponse(html, content_type="text/html; charset=utf-8")

    # --- the article form's live preview: the email's renderings too ------------------

    def preview_renderings(self):
        return {
            **super().preview_renderings(),
            "email": self._email_html_preview,
            "text": self._email_text_preview,
        }

    @staticmethod
    def _preview_issue(issue: Issue | None) -> Issue:
        """The issue an article is previewed in; on the add page, a first issue of the
        first active publication stands in for the one not made yet."""
        if issue is not None:
            return issue
        publication = Publication.objects.filter(active=True).first() or Publication(
            name="Your publication", slug="preview"
        )
        volume = Volume(publication=publication, number=1)
        return Issue(publication=publication, volume=volume, number=1)

    @sandboxed_document(img_src=["*", "data:"], style_src=[UNSAFE_INLINE])
    def _email_html_preview(self, request: HttpRequest, *, issue, headline, body):
        preview = article_preview(issue=self._preview_issue(issue), headline=headline, body=body)
        return HttpResponse(preview.html, content_type="text/html; charset=utf-8")

    def _email_text_preview(self, request: HttpRequest, *, issue, headline, body):
        preview = article_preview(issue=self._preview_issue(issue), headline=headline, body=body)
        return issues_admin.text_preview(
            request, preview.text, title=f"{headline or 'Article'}, the email's plain text"
        )

    # --- actions (POST, issues.send_issue) ----------------------------------------

    def _post_only(self, request: HttpRequest) -> HttpResponse | None:
        return None if request.method == "POST" else HttpResponseNotAllowed(["POST"])

    def test_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if refused := self._post_only(request):
            return refused
        issue = self._sendable(request, object_id)
        back = (
            reverse("admin:issues_issue_preview", args=[issue.pk])
            if request.POST.get("next") == "preview"
            else self._change_url(issue)
        )
        to = request.user.email
        if not to:
            self.message_user(
                request, "Your account has no email address: add one first.", messages.ERROR
            )
            return HttpResponseRedirect(back)
        try:
            services.send_test(issue=issue, to=to)
        except services.SendError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, f"A test copy went to {to}.", messages.SUCCESS)
        return HttpResponseRedirect(back)

    def send_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """GET: the confirmation page, with the audience size and preflight.
        POST: start the send."""
        issue = self._sendable(request, object_id)
        if issue.status not in STARTABLE:
            self.message_user(
                request,
                f"{issue} is {issue.get_status_display().lower()}: only an approved or "
                "scheduled issue can be sent.",
                messages.ERROR,
            )
            return HttpResponseRedirect(self._change_url(issue))
        if request.method == "POST":
            try:
                result = services.send_start(issue=issue, by=request.user)
            except services.SendError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            except BrokerDown as exc:
                self.message_user(
                    request, services.broker_down_message(issue, exc), messages.WARNING
                )
            else:
                level = messages.SUCCESS if result.created else messages.WARNING
                self.message_user(request, result.message, level)
            return HttpResponseRedirect(self._change_url(issue))
        checks = preflight.preflight(issue)
        return TemplateResponse(
            request,
            "delivery/admin/sending/confirm_send.html",
            self._context(
                request,
                issue,
                f"Send {issue}?",
                audience=reports.audience_size(issue),
                checks=checks,
                passed=all(c.ok for c in checks),
            ),
        )

    def schedule_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if refused := self._post_only(request):
            return refused
        issue = self._sendable(request, object_id)
        form = ScheduleForm(request.POST)
        if not form.is_valid():
            self.message_user(request, f"Schedule: {form.error_text()}", messages.ERROR)
            return HttpResponseRedirect(self._change_url(issue))
        failing = [c.detail for c in preflight.preflight(issue) if not c.ok]
        if failing:
            self.message_user(
                request, "Schedule: preflight failed: " + " ".join(failing), messages.ERROR
            )
            return HttpResponseRedirect(self._change_url(issue))
        try:
            editorial.issue_schedule(issue=issue, by=request.user, at=form.cleaned_data["at"])
        except editorial.WorkflowError as exc:
            self.message_user(request, f"Schedule: {exc}", messages.ERROR)
        else:
            at = timezone.localtime(issue.scheduled_at)
            self.message_user(
                request,
                f"{issue} will be sent at {at:%Y-%m-%d %H:%M:%S %Z} "
                f"({timezone.get_current_timezone_name()}).",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(self._change_url(issue))

    def unschedule_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if refused := self._post_only(request):
            return refused
        issue = self._sendable(request, object_id)
        try:
            editorial.issue_unschedule(issue=issue, by=request.user)
        except editorial.WorkflowError as exc:
            self.message_user(request, f"Unschedule: {exc}", messages.ERROR)
        else:
            self.message_user(request, f"{issue} is no longer scheduled.", messages.SUCCESS)
        return HttpResponseRedirect(self._change_url(issue))

    def pause_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if refused := self._post_only(request):
            return refused
        issue = self._sendable(request, object_id)
        if services.send_pause(issue=issue):
            self.message_user(
                request,
                f"{issue}: paused. Messages already handed to the mail server finish.",
                messages.SUCCESS,
            )
        else:
            self.message_user(request, f"{issue} is not sending: nothing to pause.", messages.ERROR)
        return HttpResponseRedirect(self._change_url(issue))

    def resume_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if refused := self._post_only(request):
            return refused
        issue = self._sendable(request, object_id)
        try:
            resumed = services.send_resume(issue=issue)
        except BrokerDown as exc:
            self.message_user(request, services.broker_down_message(issue, exc), messages.WARNING)
        else:
            if resumed:
                self.message_user(request, f"{issue}: sending again.", messages.SUCCESS)
            else:
                self.message_user(
                    request, f"{issue} is not paused: nothing to resume.", messages.ERROR
                )
        return HttpResponseRedirect(self._change_url(issue))

    def cancel_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if refused := self._post_only(request):
            return refused
        issue = self._sendable(request, object_id)
        form = CancelForm(request.POST)
        if issue.status != Issue.Status.SENDING:
            self.message_user(
                request, f"{issue} is not sending: nothing to cancel.", messages.ERROR
            )
        elif not form.is_valid():
            self.message_user(request, "Cancel: say why (the note is required).", messages.ERROR)
        else:
            try:
                dropped = services.send_cancel(
                    issue=issue, by=request.user, note=form.cleaned_data["note"]
                )
            except editorial.WorkflowError as exc:
                self.message_user(request, f"Cancel: {exc}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{issue}: cancelled; {dropped} queued message(s) will not be sent.",
                    messages.SUCCESS,
                )
        return HttpResponseRedirect(self._change_url(issue))

    # --- progress and report ------------------------------------------------------

    def progress_view(self, request: HttpRequest, object_id: int) -> JsonResponse:
        """Counts, percent, rate and time left, for the change form's progress bar, and
        the warning of a stalled send. Four queries beyond the session and permissions
        while the send runs (the cached answer of who consumes `send`); none grows with
        the audience (a send's rows are read only once it is late)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        job = SendJob.objects.filter(issue_id=object_id).select_related("issue").first()
        if job is None:
            get_object_or_404(Issue, pk=object_id)
            return JsonResponse(progress.progress_snapshot(job=None).as_json())
        data = progress.progress_snapshot(job=job).as_json()
        data["issue_status"] = job.issue.status
        data["warning"] = health.send_health(job=job).message
        return JsonResponse(data)

    def _may_see_recipients(self, request: HttpRequest) -> bool:
        return request.user.has_perm(SEND) or request.user.has_perm("delivery.view_delivery")

    def report_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        issue = self._viewable(request, object_id)
        job = self._job(issue)
        report = reports.issue_report(issue=issue, job=job)
        kinds = dict(DeliveryEvent.Kind.choices)
        statuses = [
            (s.value, s.label.split(" (")[0], report.counts[s.value]) for s in reports.Status
        ]
        figures = reports.figure_rows(report)
        failed = None
        if self._may_see_recipients(request):
            failed = [
                reports.recipient_row(d) for d in reports.failed_recipients(issue)[:FAILED_SHOWN]
            ]
        return TemplateResponse(
            request,
            "delivery/admin/sending/report.html",
            self._context(
                request,
                issue,
                f"Report: {issue}",
                job=job,
                report=report,
                figures=figures,
                statuses=statuses,
                status_chart=charts.bar_chart(statuses, title="Messages by status"),
                timeline_chart=charts.timeline_chart(
                    report.timeline,
                    labels=kinds,
                    title=f"ESP events per hour over the first {reports.TIMELINE_HOURS} hours",
                ),
                failed=failed,
                failed_shown=FAILED_SHOWN,
                timeline_hours=reports.TIMELINE_HOURS,
            ),
        )

    def failed_csv_view(self, request: HttpRequest, object_id: int) -> StreamingHttpResponse:
        issue = self._viewable(request, object_id)
        if not self._may_see_recipients(request):
            raise PermissionDenied
        name = f"{issue.publication.slug}-{issue.volume.number}-{issue.number}-failed.csv"
        return StreamingHttpResponse(
            reports.failed_recipients_csv(issue),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )


admin.site.unregister(Issue)
admin.site.register(Issue, SendingIssueAdmin)
