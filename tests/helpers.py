"""What tests share besides fixtures: processes started by a test, waiting, URLs.

Test modules import from here (and from tests.factories), never from a conftest."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pypdfium2
import redis
import zxingcpp
from anymail.exceptions import AnymailAPIError
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from issues.models import Issue, Publication
from monitor_site.celery import app as celery_app
from subscriptions import services
from subscriptions.models import Subscriber, Subscription
from subscriptions.tokens import confirm_url
from tests.factories import StaffFactory

ROOT = Path(__file__).resolve().parent.parent
# Delivery settings for worker processes that recover lost work within seconds.
FAST_RECOVERY = {
    "MONITOR_DELIVERY_LEASE_SECONDS": "6",
    "MONITOR_DELIVERY_SWEEP_SECONDS": "2",
    "MONITOR_DELIVERY_CHUNK_SIZE": "100",
}

BROKER_DIR: Path | None = None
if celery_app.conf.broker_url.startswith("filesystem://"):
    # One broker folder per test session, shared with the worker processes it starts.
    BROKER_DIR = Path(settings.VAR_DIR) / f"test-broker-{os.getpid()}"
    BROKER_DIR.mkdir(parents=True, exist_ok=True)
    celery_app.conf.broker_transport_options = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }


def database_url() -> str:
    """The URL of the test database, for processes started by a test."""
    sd = connection.settings_dict
    if sd["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{sd['NAME']}"
    auth = quote(sd["USER"] or "", safe="")
    if sd.get("PASSWORD"):
        auth += ":" + quote(sd["PASSWORD"], safe="")
    return f"postgres://{auth}@{sd['HOST'] or '127.0.0.1'}:{sd['PORT'] or 5432}/{sd['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a process that must share this test's database and broker."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="monitor_site.settings",
        DJANGO_SECRET_KEY=settings.SECRET_KEY,
        DATABASE_URL=database_url(),
        CELERY_BROKER_URL=celery_app.conf.broker_url,
        SITE_URL=settings.SITE_URL,
        PYTHONUNBUFFERED="1",
    )
    if BROKER_DIR is not None:
        env["MONITOR_BROKER_DIR"] = str(BROKER_DIR)
    env.update(extra)
    return env


def worker_env(port: int) -> dict[str, str]:
    """A worker process's environment: SMTP to a sink on `port`, fast recovery."""
    return {"EMAIL_URL": f"smtp://127.0.0.1:{port}", **FAST_RECOVERY}


def cache_is_redis() -> bool:
    return settings.CACHES["default"]["BACKEND"].endswith(".RedisCache")


def clear_default_cache() -> None:
    """Empty the default cache. On Redis it shares a database with the Celery broker,
    so only our prefixed keys go (cache.clear() would be FLUSHDB: queues and all)."""
    if not cache_is_redis():
        cache.clear()
        return
    config = settings.CACHES["default"]
    with redis.Redis.from_url(config["LOCATION"]) as client:
        keys = list(client.scan_iter(match=f"{config['KEY_PREFIX']}:*", count=1000))
        if keys:
            client.delete(*keys)


def purge_queues() -> None:
    with celery_app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in celery_app.conf.task_queues:
            try:
                channel.queue_purge(queue.name)
            except Exception:  # noqa: S112 - a queue that does not exist yet holds nothing
                continue


class WorkerProcess:
    """A `celery -A monitor_site worker` child process, consuming every queue as
    documented unless `queues` names some (-Q); its log is kept for failures."""

    def __init__(
        self,
        log_path: Path,
        env: dict[str, str],
        concurrency: int,
        beat: bool,
        queues: tuple[str, ...] | None = None,
    ) -> None:
        self.log_path = log_path
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "monitor_site",
            "worker",
            "--loglevel=INFO",
            f"--concurrency={concurrency}",
            f"--hostname=test-{uuid.uuid4().hex[:8]}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
        if queues:
            args += ["-Q", ",".join(queues)]
        if beat:
            args += ["--beat", f"--schedule={log_path.with_suffix('.beat')}"]
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log()}")
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL the whole worker: the main process and its pool children."""
        import signal

        children = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True
        ).stdout.split()
        self.proc.send_signal(signal.SIGKILL)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        # No graceful shutdown needed at the end of a test: what it sends is recorded.
        if self.proc.poll() is None:
            self.kill()
        self._log.close()


def wait_for(predicate: Callable[[], object], timeout: float = 60, interval: float = 0.2) -> object:
    """Poll until predicate() is truthy; fail with a clear message on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def member_of(group: str, username: str, *, email: str | None = None) -> User:
    """A staff user (password "pw") in one of the groups the migrations create."""
    assert Group.objects.filter(name=group).exists(), f"no group {group!r}"
    extra = {} if email is None else {"email": email}
    return StaffFactory(username=username, groups=[group], **extra)


def url(name: str, issue: Issue) -> str:
    """An Issue admin URL added by the sending admin (`preview`, `send`, …)."""
    return reverse(f"admin:issues_issue_{name}", args=[issue.pk])


def status_of(issue: Issue) -> str:
    return Issue.objects.values_list("status", flat=True).get(pk=issue.pk)


@dataclass
class Sink:
    """What a real SMTP server received, and how it should answer."""

    messages: list[tuple[str, bytes]] = field(default_factory=list)
    reject: dict[str, str] = field(default_factory=dict)  # address -> SMTP reply
    reject_data: dict[str, str] = field(default_factory=dict)  # ... at the end of DATA
    defer_once: set[str] = field(default_factory=set)  # addresses refused with 451 once
    hang_up_at: str = ""  # an address whose message content ends the connection
    # every n-th message is refused with 421 and its connection closed (0: none)
    close_every: int = 0
    closed: int = 0  # messages refused so
    seen: int = 0  # messages whose content arrived
    arrived: list[float] = field(default_factory=list)  # when each of `messages` did
    delay: float = 0.0
    pipelining: bool = False  # advertise RFC 2920 PIPELINING
    reject_sender: str = ""  # the reply to every MAIL FROM, if set
    senders: dict[str, str] = field(default_factory=dict)  # recipient -> its MAIL FROM
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.reject_sender:
            return self.reject_sender
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject:
            return self.reject[address]
        with self.lock:
            deferred = address in self.defer_once
            self.defer_once.discard(address)
        if deferred:
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        if self.hang_up_at in envelope.rcpt_tos:
            server.transport.close()
            return "421 4.3.2 Shutting down"
        for rcpt in envelope.rcpt_tos:
            if rcpt in self.reject_data:
                return self.reject_data[rcpt]
        with self.lock:
            self.seen += 1
            closing = self.close_every and self.seen % self.close_every == 0
            self.closed += bool(closing)
        if closing:
            # the reply, then the connection closed (what follows it is dropped)
            await server.push("421 4.3.2 Closing the connection")
            server.transport.close()
            return "421 4.3.2 Closing the connection"
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.messages.append((rcpt, envelope.original_content))
                self.senders[rcpt] = envelope.mail_from
                self.arrived.append(time.time())
        return "250 Message accepted"

    def recipients(self) -> list[str]:
        with self.lock:
            return [rcpt for rcpt, _ in self.messages]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CLOSED_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1: a broker that is down


@dataclass
class Site:
    """A site process of its own (`running_site`): its address, and its output once it
    has stopped."""

    base: str
    log: str = ""


@contextlib.contextmanager
def running_site(**env: str) -> Iterator[Site]:
    """`manage.py runserver` in a process of its own, on this test's database, with
    `env` over `child_env()` (DEBUG on: static files without a collectstatic manifest)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=child_env(DJANGO_DEBUG="1", **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    site = Site(f"http://127.0.0.1:{port}")
    try:
        wait_for(lambda: _listening(port), timeout=60)
        yield site
    finally:
        server.terminate()
        site.log = server.communicate(timeout=30)[0]


def form_post(session, url: str, data: dict, *, form: str | None = None):
    """As a browser does: GET the page of the form (`form`, else `url`) for its CSRF
    token and cookie, then POST `data` to `url`. `session`: a requests.Session."""
    page = session.get(form or url, timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return session.post(
        url,
        data={**data, "csrfmiddlewaretoken": token},
        headers={"Referer": form or url},
        allow_redirects=False,
        timeout=30,
    )


def confirm_current_request(subscriber: Subscriber) -> list[Subscription]:
    """Confirm as the link of the subscriber's latest confirmation email does."""
    nonce = Subscriber.objects.values_list("confirm_nonce", flat=True).get(pk=subscriber.pk)
    return services.subscription_confirm(subscriber=subscriber, nonce=nonce)


def confirm_path(subscriber: Subscriber) -> str:
    """The path of the confirm link in the subscriber's latest confirmation email."""
    nonce = Subscriber.objects.values_list("confirm_nonce", flat=True).get(pk=subscriber.pk)
    return confirm_url(subscriber.pk, nonce).removeprefix(settings.SITE_URL)


def make_subscription(
    publication: Publication,
    email: str = "reader@example.org",
    status: str = Subscription.Status.ACTIVE,
    **subscriber_fields: str,
) -> Subscription:
    subscriber, _ = Subscriber.objects.get_or_create(email=email, defaults=subscriber_fields)
    return Subscription.objects.create(
        subscriber=subscriber, publication=publication, status=status
    )


def sent_delivery(issue: Issue, address: str, *, ago: timedelta = timedelta(hours=1)):
    """A delivery of `issue`, sent `ago`, to a subscriber at `address` (made if new)."""
    from delivery.models import Delivery

    subscription = make_subscription(issue.publication, address)
    return Delivery.objects.create(
        issue=issue,
        subscriber=subscription.subscriber,
        subscription=subscription,
        email=address,
        status=Delivery.Status.SENT,
        sent_at=timezone.now() - ago,
    )


def chunks(issue: Issue, size: int = 500) -> list[tuple[int, int]]:
    """The id ranges of the queued rows, as dispatch would hand them out."""
    from delivery.models import Delivery

    ids = list(
        Delivery.objects.filter(issue=issue, status="queued")
        .order_by("id")
        .values_list("id", flat=True)
    )
    return [(ids[i], ids[min(i + size, len(ids)) - 1]) for i in range(0, len(ids), size)]


def run_all(issue: Issue) -> None:
    """Send every queued row of the issue in this process, chunk by chunk."""
    from delivery import chunk

    for lo, hi in chunks(issue):
        chunk.chunk_send(issue_id=issue.pk, lo=lo, hi=hi)


def api_error(status: int) -> AnymailAPIError:
    """What anymail raises when the ESP answers `status`."""

    class Response:
        status_code = status
        text = "error"
        reason = "error"

        def json(self) -> dict:
            return {}

    return AnymailAPIError(f"ESP answered {status}", status_code=status, response=Response())


POSTFIX = Path("/usr/sbin/postfix")


def postfix_missing() -> str:
    """Why Postfix cannot run here ("" when it can): it needs the Debian package and root."""
    if not POSTFIX.exists():
        return "Postfix is not installed (Debian package postfix)"
    if os.geteuid() != 0:
        return "Postfix needs root to start"
    return ""


def _authorize_postfix_config(config: Path) -> None:
    """Postfix runs a configuration folder other than /etc/postfix only if the default
    main.cf names it in alternate_config_directories; add ours, under a lock, as other
    test runs may be adding theirs."""
    import fcntl

    main = Path("/etc/postfix/main.cf")
    with open("/tmp/monitor-postfix-config.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not main.exists():
            main.write_text(f"alternate_config_directories = {config}\n")
            return
        current = subprocess.run(
            ["postconf", "-h", "alternate_config_directories"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        names = [n for n in current.replace(",", " ").split() if Path(n).exists()]
        if str(config) not in names:
            names.append(str(config))
            subprocess.run(
                ["postconf", "-e", f"alternate_config_directories = {', '.join(names)}"],
                check=True,
            )


@contextlib.contextmanager
def running_postfix(relay_port: int, *, maildir_domain: str = "") -> Iterator[tuple[int, Path]]:
    """A Postfix of its own in a new folder (configuration, queue, log), listening on a
    free loopback port and relaying everything to 127.0.0.1:`relay_port`; yields its
    port and its log (there is no syslog here). The folder is readable by the postfix
    user, which pytest's own temporary folders are not.

    With `maildir_domain`, mail to bounces@ (and bounces+anything@) that domain is
    delivered to the Maildir `mail/bounces/` beside the log, and a message the relay
    refuses with a 4xx is returned at once (no queue lifetime) as a delivery report."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="monitor-postfix-"))
    folder.chmod(0o755)
    config, queue, data = folder / "etc", folder / "queue", folder / "data"
    for path in (config, queue, data, folder / "mail"):
        path.mkdir(parents=True, exist_ok=True)
    shutil.chown(data, "postfix")
    shutil.chown(folder / "mail", "postfix", "postfix")
    mailboxes = []
    if maildir_domain:
        import pwd

        owner = pwd.getpwnam("postfix")
        mailboxes = [
            f"virtual_mailbox_domains = {maildir_domain}",
            f"virtual_mailbox_base = {folder / 'mail'}",
            f"virtual_mailbox_maps = inline:{{ bounces@{maildir_domain}=bounces/ }}",
            f"virtual_uid_maps = static:{owner.pw_uid}",
            f"virtual_gid_maps = static:{owner.pw_gid}",
            "recipient_delimiter = +",
            "maximal_queue_lifetime = 0",
            "bounce_queue_lifetime = 0",
        ]
    port = free_port()
    (config / "main.cf").write_text(
        "\n".join(
            [
                "compatibility_level = 3.6",
                f"queue_directory = {queue}",
                f"data_directory = {data}",
                "inet_interfaces = loopback-only",
                "inet_protocols = ipv4",
                "myhostname = postfix.test.example",
                "mydestination =",
                "mynetworks = 127.0.0.0/8",
                "smtpd_relay_restrictions = permit_mynetworks, reject",
                f"relayhost = [127.0.0.1]:{relay_port}",
                f"maillog_file = {folder / 'maillog'}",
                f"maillog_file_prefixes = {folder}",
                *mailboxes,
                "",
            ]
        )
    )
    services = []
    for line in Path("/etc/postfix/master.cf").read_text().splitlines():
        fields = line.split()
        if line[:1].isalnum() and len(fields) >= 8:
            if fields[:2] == ["smtp", "inet"]:
                fields[0] = str(port)
            fields[4] = "n"  # no chroot: the queue folder holds no copy of /etc
            line = "  ".join(fields)
        services.append(line)
    (config / "master.cf").write_text("\n".join(services) + "\n")
    _authorize_postfix_config(config)
    subprocess.run([str(POSTFIX), "-c", str(config), "start"], check=True, capture_output=True)
    try:
        wait_for(lambda: _listening(port), timeout=30)
        yield port, folder / "maillog"
    finally:
        subprocess.run([str(POSTFIX), "-c", str(config), "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


DOVECOT = Path("/usr/sbin/dovecot")


def dovecot_missing() -> str:
    """Why Dovecot cannot run here ("" when it can): the Debian package dovecot-imapd."""
    if not DOVECOT.exists():
        return "Dovecot is not installed (Debian package dovecot-imapd)"
    if os.geteuid() != 0:
        return "Dovecot needs root to start"
    return ""


@contextlib.contextmanager
def running_dovecot(password: str) -> Iterator[tuple[int, Path]]:
    """A Dovecot IMAP server of its own in a new folder, on a free loopback port, without
    TLS, where any user logs in with `password` and keeps mail in a Maildir under the
    folder; yields its port and its log."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="monitor-dovecot-"))
    folder.chmod(0o755)
    (folder / "home").mkdir()
    shutil.chown(folder / "home", "dovecot", "dovecot")
    port = free_port()
    config = folder / "dovecot.conf"
    config.write_text(
        f"""\
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = maildir:{folder}/home/%u/Maildir
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={folder}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""
    )
    process = subprocess.Popen(
        [str(DOVECOT), "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        with contextlib.suppress(AssertionError):
            wait_for(lambda: _listening(port) or process.poll() is not None, timeout=30)
        if process.poll() is not None:
            raise RuntimeError(f"Dovecot did not start: {process.stderr.read().decode()}")
        yield port, folder / "dovecot.log"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


MM_PER_POINT = 25.4 / 72


def pdf_pages_text(data: bytes) -> list[str]:
    """The text of each page of a PDF as pypdf reads it back, runs of white space made one
    space (so a phrase matches wherever the layout broke its lines)."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages]


def pdf_text_box(data: bytes, page: int, text: str) -> tuple[float, float, float, float]:
    """Where `text` is printed on page `page` (from 0): left, top, right and bottom in mm
    from the page's top-left corner, from the glyph boxes PDFium computes."""
    pdf = pypdfium2.PdfDocument(data)
    try:
        sheet = pdf[page]
        height = sheet.get_height()
        chars = sheet.get_textpage()
        found = chars.search(text, match_case=True).get_next()
        assert found, f"{text!r} is not on page {page}"
        start, count = found
        boxes = [chars.get_charbox(i) for i in range(start, start + count)]
        left, bottom, right, top = (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
        return (
            left * MM_PER_POINT,
            (height - top) * MM_PER_POINT,
            right * MM_PER_POINT,
            (height - bottom) * MM_PER_POINT,
        )
    finally:
        pdf.close()


@dataclass(frozen=True)
class QrCode:
    text: str
    width_mm: float
    ec_level: str


def pdf_qr_codes(data: bytes, page: int, dpi: int = 150) -> list[QrCode]:
    """The QR codes on page `page` (from 0), found by rendering the page to an image with
    PDFium and decoding it with zxing-cpp, as a phone's camera would."""
    pdf = pypdfium2.PdfDocument(data)
    try:
        image = pdf[page].render(scale=dpi / 72).to_pil()
    finally:
        pdf.close()
    return [
        QrCode(
            text=code.text,
            width_mm=(code.position.top_right.x - code.position.top_left.x) / dpi * 25.4,
            ec_level=code.ec_level,
        )
        for code in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    ]


def send_in_process(issue: Issue) -> None:
    """Start the send of `issue` and run its queued rows in this process (no broker)."""
    from delivery import services

    services.send_start(issue=issue)
    run_all(issue)


def offline_reader(publication: Publication, **fields: str) -> Subscriber:
    """An offline reader of `publication` with a join code: from the legacy postal list,
    with a postal address, unless told otherwise."""
    from subscriptions.joincodes import join_code_new

    fields.setdefault("postal_address", "1 Main Street\nSpringfield")
    fields.setdefault("source", Subscriber.Source.LEGACY_POSTAL)
    subscriber = Subscriber.objects.create(join_code=join_code_new(), **fields)
    subscription = Subscription.objects.create(
        subscriber=subscriber, publication=publication, status=Subscription.Status.OFFLINE
    )
    subscription.events.create(to_status=subscription.status, reason="import")
    return subscriber


@dataclass
class ReaderHistory:
    """A reader with one of every kind of row held about an address (reader_with_history)."""

    email: str
    subscriber: Subscriber
    issues: list[Issue]
    staff: User
    offline: Subscriber  # someone else's offline row, whose code was typed with the address


def reader_with_history(publication: Publication, email: str = "alice@example.org"):
    """A reader with a full history: an earlier bounce that staff lifted, a subscription
    requested on the web and confirmed, two issues sent (the second refused, the server
    naming the address), the ESP's events (delivered, opened by the reader and by a
    privacy proxy, clicked, and a bounce matching no delivery), a contact message, the
    admin log's entries about the subscriber and the subscription, and a join code of an
    offline reader typed with the address. Rows are made by the services, as in use."""
    from anymail.signals import AnymailTrackingEvent
    from django.contrib.admin.models import CHANGE, LogEntry

    from delivery import feedback
    from delivery.models import Delivery
    from subscriptions import joining
    from tests.factories import IssueFactory

    staff = StaffFactory(username="records", groups=["Subscription staff"])
    earlier = services.suppression_add(
        email=email, reason="bounced", source="postmark webhook: bounced"
    )
    services.suppression_lift(suppression=earlier, by=staff, note=f"{email} wrote: try again")
    subscriber = services.subscription_request(
        email=email,
        name="Alice Example",
        organization="Example Org",
        publications=[publication],
        ip="203.0.113.7",
        form="web:/subscribe/",
    )
    nonce = Subscriber.objects.values_list("confirm_nonce", flat=True).get(pk=subscriber.pk)
    services.subscription_confirm(subscriber=subscriber, nonce=nonce, ip="203.0.113.8")
    issues = [
        IssueFactory(volume__publication=publication, number=n, status=Issue.Status.APPROVED)
        for n in (11, 12)
    ]
    for issue in issues:
        send_in_process(issue)
    refused = Delivery.objects.get(issue=issues[1], email=email)
    Delivery.objects.filter(pk=refused.pk).update(
        status=Delivery.Status.FAILED,
        last_error=f"SMTP 550 5.1.1 <{email.upper()}>: Recipient address rejected",
    )
    sent = Delivery.objects.get(issue=issues[0], email=email)
    at = sent.sent_at + timedelta(minutes=5)
    human = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"
    for n, (kind, extra) in enumerate(
        [
            ("delivered", {}),
            ("opened", {"user_agent": "Mozilla/5.0"}),  # Apple Mail's privacy proxy
            ("opened", {"user_agent": human}),
            ("clicked", {"user_agent": human, "click_url": "https://example.org/monitor/"}),
            # a day before the issue went: matches no delivery
            ("bounced", {"timestamp": sent.sent_at - timedelta(days=1)}),
        ]
    ):
        fields = {"timestamp": at + timedelta(minutes=n), **extra}
        feedback.event_record(
            esp="postmark",
            event=AnymailTrackingEvent(
                event_type=kind,
                recipient=email,
                event_id=f"{kind}-{n}",
                metadata={"delivery_id": str(sent.pk)} if kind != "bounced" else {},
                description=f"reported for {email}",
                **fields,
            ),
        )
    services.contact_message_create(
        name="Alice Example",
        email=email,
        subject="About issue 11",
        body=f"Please write to {email} about the piece on Belarus.",
        publication=publication,
        ip="203.0.113.9",
    )
    subscription = subscriber.subscriptions.get()
    LogEntry.objects.log_actions(staff.pk, [subscriber], CHANGE, change_message="Changed name.")
    LogEntry.objects.log_actions(
        staff.pk,
        [subscription],
        CHANGE,
        change_message=[{"changed": {"name": "subscription", "object": str(subscription)}}],
    )
    offline = offline_reader(publication, name="Bob Offline")
    joining.join_request(code=offline.join_code, email=email)
    return ReaderHistory(email, subscriber, issues, staff, offline)


def text_holding(needle: str) -> list[tuple[str, str]]:
    """Every (table, column) of the database whose value contains `needle` (any case),
    over every table and every column the database has, whatever the model."""
    found = []
    with connection.cursor() as cursor:
        tables = [t.name for t in connection.introspection.get_table_list(cursor) if t.type == "t"]
        for table in tables:
            columns = connection.introspection.get_table_description(cursor, table)
            for column in columns:
                name = connection.ops.quote_name(column.name)
                cursor.execute(
                    f"SELECT 1 FROM {connection.ops.quote_name(table)} "  # noqa: S608
                    f"WHERE LOWER(CAST({name} AS TEXT)) LIKE %s LIMIT 1",
                    [f"%{needle.lower()}%"],
                )
                if cursor.fetchone():
                    found.append((table, column.name))
    return found
