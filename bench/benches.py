"""The six benchmarks. Each returns one result dict (see `figure`)."""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from email.utils import format_datetime

from django.conf import settings
from django.core.cache import caches
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench import data, limits, procs
from bench.espstub import stats as esp_stats
from bench.smtpsink import count as sink_count
from delivery import fanout as engine_fanout
from delivery import progress, services
from delivery.models import Delivery, SendJob
from delivery.rendering import Recipient, RenderedIssue
from issues.models import Issue
from subscriptions import tokens
from subscriptions.models import Subscription


def spread(values: list[float], digits: int = 1) -> dict[str, float]:
    return {
        "min": round(min(values), digits),
        "median": round(statistics.median(values), digits),
        "max": round(max(values), digits),
    }


def figure(name: str, key: str, values: list[float], **extra: object) -> dict:
    """One benchmark's result: the median as the headline figure, and the spread."""
    return {
        "bench": name,
        key: round(statistics.median(values), 1),
        "runs": len(values),
        key + "_runs": spread(values),
        **extra,
    }


def fanout(ctx, *, n: int = 100_000) -> dict:
    """Delivery rows created for N subscribers by send_start's one INSERT … SELECT,
    committed (PostgreSQL checks the foreign keys at commit)."""
    issue = ctx.issue
    data.set_audience(issue.publication, n)
    rates = []
    for _ in range(ctx.runs):
        data.reset_issue(issue)
        start = time.perf_counter()
        with transaction.atomic():
            created, _, _ = engine_fanout.fan_out(issue)
        elapsed = time.perf_counter() - start
        assert created == n, (created, n)
        rates.append(n / elapsed)
    data.reset_issue(issue)
    return figure("fanout", "records_per_s", rates, n=n)


def _recipients(issue: Issue, n: int) -> list[dict]:
    return list(
        Subscription.objects.filter(publication=issue.publication)
        .order_by("id")
        .values("id", "subscriber_id", "subscriber__email", "subscriber__name", "format")[:n]
    )


def render(ctx, *, n: int = 10_000) -> dict:
    """Finished messages (per-recipient links signed, bytes ready for SMTP DATA) built
    per second by one process: one core."""
    issue = ctx.issue
    rows = _recipients(issue, n)
    rendered = RenderedIssue(issue)
    rates = []
    size = 0
    for _ in range(max(ctx.runs, 5)):
        date = format_datetime(timezone.now())
        start = time.perf_counter()
        # as a chunk of the engine's does: the link signers looked up once
        unsubscribe = tokens.url_maker(tokens.UNSUBSCRIBE, "unsubscribe")
        preferences = tokens.url_maker(tokens.FOOTER_PREFERENCES, "preferences")
        for r in rows:
            raw = rendered.as_bytes(
                Recipient.for_subscription(
                    issue_id=issue.pk,
                    subscriber_id=r["subscriber_id"],
                    subscription_id=r["id"],
                    email=r["subscriber__email"],
                    name=r["subscriber__name"],
                    format=r["format"],
                    unsubscribe=unsubscribe,
                    preferences=preferences,
                ),
                date=date,
            )
        rates.append(n / (time.perf_counter() - start))
        size = len(raw)
    return figure("render", "messages_per_s", rates, n=n, message_bytes=size, cores_used=1)


def _postgres_backends() -> list[int]:
    """The PostgreSQL server processes serving the bench database, but this one's."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


def _cpu(pids: list[int]) -> dict[int, float]:
    return {pid: procs.cpu_seconds(pid) for pid in pids}


def _send_once(
    ctx, n: int, check: Callable[[], int], watch: list[int], stand_in: int
) -> tuple[float, float, dict[str, float], float]:
    """Start the issue's send and wait until it is done; (seconds, peak RSS MB of the
    worker's processes summed, CPU µs a message of the worker, PostgreSQL's backends and
    the stand-in, peak PSS MB of the worker's processes summed)."""
    issue = ctx.issue
    data.reset_issue(issue)
    data.set_audience(issue.publication, n)
    before = check()
    peak = pss = 0.0
    polls = 0
    cpu_before = _cpu([*watch, stand_in, *_postgres_backends()])
    start = time.perf_counter()
    services.send_start(issue=issue)
    deadline = start + 600
    while True:
        state = SendJob.objects.filter(issue=issue).values_list("state", flat=True).first()
        if state == SendJob.State.DONE:
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"send of {n} not done after 600 s: {progress.progress(issue)}")
        peak = max(peak, sum(procs.rss_mb(watch).values()))
        if polls % 20 == 0:  # reading smaps costs more than a poll
            pss = max(pss, procs.pss_mb(watch))
        polls += 1
        time.sleep(0.01)  # a 10,000 send takes about half a second
    elapsed = time.perf_counter() - start
    backends = _postgres_backends()
    cpu_after = _cpu([*watch, stand_in, *backends])

    def used(pids: list[int]) -> float:
        seconds = sum(cpu_after[p] - cpu_before.get(p, 0.0) for p in pids)
        return round(seconds / n * 1e6, 1)

    cpu = {"worker": used(watch), "postgresql": used(backends), "stand_in": used([stand_in])}
    counts = progress.progress(issue)
    arrived = check() - before
    if counts[Delivery.Status.SENT] != n or arrived != n:
        raise RuntimeError(f"sent {counts}, the receiving end saw {arrived}, expected {n}")
    return elapsed, peak, cpu, max(pss, procs.pss_mb(watch))


def _end_to_end(
    ctx, name: str, worker_env: dict[str, str], check: Callable[[], int], stand_in: int
) -> dict:
    """Through `celery worker --concurrency=2`, a fresh worker per workload."""
    out: dict[str, object] = {"bench": name, "worker": "celery prefork, concurrency 2"}
    headline = None
    for n in ctx.sizes:
        worker = procs.celery_worker(f"{name}-worker-{n}", worker_env)
        try:
            pool = worker.children()
            rates, peaks, cpus, psss = [], [], [], []
            for _ in range(ctx.runs):
                run = _send_once(ctx, n, check, [worker.pid, *pool], stand_in)
                elapsed, peak, cpu, pss = run
                rates.append(n / elapsed)
                peaks.append(peak)
                cpus.append(cpu)
                psss.append(pss)
            hwm = procs.peak_rss_mb([worker.pid, *pool])
        finally:
            worker.stop()
        out[f"n{n}"] = {
            "messages_per_s": round(statistics.median(rates), 1),
            "runs": len(rates),
            "messages_per_s_runs": spread(rates),
            "peak_worker_rss_mb": round(max(hwm.values()), 1),
            "peak_worker_rss_total_mb": round(sum(hwm.values()), 1),
            # pages the pool shares with the parent count once: the memory they take
            "peak_worker_pss_total_mb": round(max(psss), 1),
            "cpu_us_per_message": {
                part: round(statistics.median(c[part] for c in cpus), 1) for part in cpus[0]
            },
        }
        headline = out[f"n{n}"]
    out["messages_per_s"] = headline["messages_per_s"]
    out["peak_worker_rss_mb"] = headline["peak_worker_rss_mb"]
    out["peak_worker_rss_total_mb"] = headline["peak_worker_rss_total_mb"]
    out["peak_worker_pss_total_mb"] = headline["peak_worker_pss_total_mb"]
    out["n"] = list(ctx.sizes)
    out["runs"] = ctx.runs
    out["smtp_connections_per_process"] = settings.DELIVERY_SMTP_CONNECTIONS
    out["esp_calls_per_process"] = settings.DELIVERY_ESP_CALLS
    return out


def _shares(ctx, out: dict, of: str, key: str) -> None:
    """`out[key]` for each size: its messages/s over those of `of` in the same run."""
    other = ctx.results.get(of, {})
    for n in ctx.sizes:
        mine, theirs = out.get(f"n{n}"), other.get(f"n{n}")
        if mine and theirs and theirs.get("messages_per_s"):
            mine[key] = round(mine["messages_per_s"] / theirs["messages_per_s"], 3)


SMTP_REAL = {"reply": 0.0005, "data": 0.003}  # a relay: per reply, and to take a message
ESP_REAL = 0.15  # an ESP's answer to an API call


def _smtp(ctx, name: str, delays: dict[str, float]) -> dict:
    sink, port = procs.smtp_sink(ctx.env, **delays)
    try:
        env = {**ctx.env, "EMAIL_URL": f"smtp://127.0.0.1:{port}"}
        result = _end_to_end(ctx, name, env, lambda: sink_count(port)[0], sink.pid)
        result["sink"] = "bench.smtpsink (asyncio, one process)"
        result["sink_delays_s"] = delays
        return result
    finally:
        sink.stop()


def smtp(ctx) -> dict:
    result = _smtp(ctx, "smtp", {"reply": 0.0, "data": 0.0})
    _shares(ctx, result, "smtp_limit", "of_limit")
    return result


def smtp_real(ctx) -> dict:
    result = _smtp(ctx, "smtp_real", SMTP_REAL)
    _shares(ctx, result, "smtp", "of_zero_latency")
    _shares(ctx, result, "smtp_limit_real", "of_limit")
    return result


def _esp(ctx, name: str, delay: float) -> dict:
    stub, port = procs.esp_stub(ctx.env, delay=delay)
    try:
        env = {
            **ctx.env,
            "ANYMAIL_ESP": "mailgun",
            "ANYMAIL_MAILGUN_API_KEY": "key-bench",
            "ANYMAIL_MAILGUN_API_URL": f"http://127.0.0.1:{port}/v3",
        }
        check = lambda: esp_stats(port)["recipients"]  # noqa: E731
        result = _end_to_end(ctx, name, env, check, stub.pid)
        result["esp"] = "mailgun batch API stand-in (bench.espstub)"
        result["esp_delay_s"] = delay
        result["api_calls"] = esp_stats(port)["calls"]
        result["delivery_rows_written"] = True
        return result
    finally:
        stub.stop()


def esp_batch(ctx) -> dict:
    result = _esp(ctx, "esp_batch", 0.0)
    _shares(ctx, result, "esp_limit", "of_limit")
    return result


def esp_batch_real(ctx) -> dict:
    result = _esp(ctx, "esp_batch_real", ESP_REAL)
    _shares(ctx, result, "esp_batch", "of_zero_latency")
    _shares(ctx, result, "esp_limit_real", "of_limit")
    return result


def _limit(ctx, name: str, start: Callable, rate: Callable) -> dict:
    out: dict[str, object] = {"bench": name, "client": "asyncio, no Django/database/Celery"}
    for n in ctx.sizes:
        child, port = start()
        try:
            rates = [rate(port, n) for _ in range(ctx.runs)]
        finally:
            child.stop()
        out[f"n{n}"] = {
            "messages_per_s": round(statistics.median(rates), 1),
            "runs": len(rates),
            "messages_per_s_runs": spread(rates),
        }
        out["messages_per_s"] = out[f"n{n}"]["messages_per_s"]
    out["processes"] = limits.PROCESSES
    out["n"] = list(ctx.sizes)
    out["runs"] = ctx.runs
    return out


def smtp_limit(ctx) -> dict:
    """The bare client against the zero-latency sink and against the realistic one."""
    messages = limits.smtp_messages(ctx.issue)
    rate = lambda port, n: limits.smtp_limit_rate(messages, port, n)  # noqa: E731
    zero = _limit(ctx, "smtp_limit", lambda: procs.smtp_sink(ctx.env), rate)
    real = _limit(ctx, "smtp_limit_real", lambda: procs.smtp_sink(ctx.env, **SMTP_REAL), rate)
    ctx.results["smtp_limit_real"] = real
    zero["connections_per_process"] = settings.DELIVERY_SMTP_CONNECTIONS
    zero["real"] = {k: v for k, v in real.items() if k.startswith("n") or k == "messages_per_s"}
    return zero


def esp_limit(ctx) -> dict:
    captured = limits.esp_body(ctx.issue)
    rate = lambda port, n: limits.esp_limit_rate(captured, port, n)  # noqa: E731
    zero = _limit(ctx, "esp_limit", lambda: procs.esp_stub(ctx.env), rate)
    real = _limit(ctx, "esp_limit_real", lambda: procs.esp_stub(ctx.env, delay=ESP_REAL), rate)
    ctx.results["esp_limit_real"] = real
    zero["calls_per_process"] = settings.DELIVERY_ESP_CALLS
    zero["batch_body_bytes"] = len(captured[0])
    zero["real"] = {k: v for k, v in real.items() if k.startswith("n") or k == "messages_per_s"}
    return zero


# wrk's request for `vary`: the URL with a parameter no page reads, new each request,
# so that no response kept for an earlier request answers it.
_VARY_LUA = """
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, wrk.path .. "&_=RUN-" .. counter)
end
"""


def _wrk(url: str, seconds: int, connections: int, vary: bool = False) -> tuple[float, float]:
    script = []
    if vary:
        path = procs.ROOT / "var" / "bench" / "vary.lua"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_VARY_LUA.replace("RUN", str(time.time_ns())))
        script = ["-s", str(path)]
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            *script,
            "-H",
            "Host: 127.0.0.1",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise RuntimeError(f"wrk saw {non2xx.group(1)} error responses:\n{out}")
    return rps, p99


def _python_load(
    url: str, seconds: int, connections: int, vary: bool = False
) -> tuple[float, float]:
    """A small asyncio load generator, for machines without wrk (it costs more CPU)."""
    import asyncio
    from itertools import count
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    target = f"{parts.path}?{parts.query}" if parts.query else parts.path
    # with `vary`, as the wrk script does: a parameter no page reads, new each request
    fresh = (f"{target}{'&' if parts.query else '?'}_={time.time_ns()}-{n}" for n in count())
    latencies: list[float] = []

    def request() -> bytes:
        path = next(fresh) if vary else target
        return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()

    async def client(stop: float) -> None:
        while time.perf_counter() < stop:
            t = time.perf_counter()
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            writer.write(request())
            response = await reader.read()
            writer.close()
            if not response.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(response[:200])
            latencies.append(time.perf_counter() - t)

    async def main() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(client(start + seconds) for _ in range(connections)))
        return time.perf_counter() - start

    elapsed = asyncio.run(main())
    latencies.sort()
    return len(latencies) / elapsed, latencies[int(len(latencies) * 0.99)] * 1000


def _served(
    ctx,
    path: str,
    env: dict[str, str],
    seconds: int,
    connections: int,
    vary: bool = False,
    cpu: list[dict[str, float]] | None = None,
) -> tuple[list[float], list[float], str]:
    """Requests/s and p99 (ms) of each run of GET `path` under gunicorn (2 sync workers),
    and the load generator's name; with `vary`, each request's URL is a new one. With
    `cpu`, each run appends the CPU ms a request of the web workers: what a request costs
    them, whatever else the shared machine is doing."""
    port = procs.free_port()
    server = procs.Child(
        "gunicorn",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers=2",
            f"--bind=127.0.0.1:{port}",
            "--error-logfile=-",
            "monitor_site.wsgi:application",
        ],
        env,
    )
    try:
        procs.wait_port(port, server.proc)
        url = f"http://127.0.0.1:{port}{path}"
        load = _wrk if shutil.which("wrk") else _python_load
        load(url, 2, connections)  # warm both workers
        rates, p99s = [], []
        for _ in range(ctx.runs):
            web = server.children()
            before = _cpu(web)
            rps, p99 = load(url, seconds, connections, vary)
            after = _cpu(web)
            rates.append(rps)
            p99s.append(p99)
            if cpu is not None:
                spent = sum(after[p] - before[p] for p in web)
                cpu.append({"web": round(spent * 1000 / (rps * seconds), 2)})
    finally:
        server.stop()
    name = f"wrk -t1 -c{connections}" if load is _wrk else "bench asyncio client"
    return rates, p99s, name


def _collectstatic(ctx) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=procs.ROOT,
        env=ctx.env,
        check=True,
    )


def archive(ctx, *, seconds: int = 10, connections: int = 8) -> dict:
    """The issue page under gunicorn (2 sync workers) and a local load generator."""
    issue = ctx.issue
    data.reset_issue(issue)
    Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.SENT)
    issue.refresh_from_db()
    path = issue.get_absolute_url()
    _collectstatic(ctx)
    client = Client(HTTP_HOST="127.0.0.1")
    client.get(path, secure=True)  # warm: the first request loads templates and URLs
    caches["pages"].clear()  # count the queries of a rendered page, not a cached one
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, secure=True)
    with CaptureQueriesContext(connection) as cached_queries:
        client.get(path, secure=True)
    assert response.status_code == 200, response.status_code
    rates, p99s, load = _served(ctx, path, ctx.env, seconds, connections)
    Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.APPROVED)
    return figure(
        "archive",
        "requests_per_s",
        rates,
        p99_ms=round(statistics.median(p99s), 2),
        p99_ms_runs=spread(p99s, 2),
        queries_per_page=len(queries),
        queries_per_cached_page=len(cached_queries),
        page_cache="per web process, 60 s (issues.views.ISSUE_PAGE_SECONDS)",
        page_bytes=len(response.content),
        server="gunicorn, 2 sync workers",
        load_generator=load,
        seconds_per_run=seconds,
        url_path=path,
        debug=settings.DEBUG,
    )


def search(ctx, *, seconds: int = 10, connections: int = 8) -> dict:
    """A three-word query over N archived articles (N the first of --sizes; the query is
    bench.data.SEARCH_QUERY), its first page of results under gunicorn (2 sync workers),
    the rate limit counting every request but set high enough for one client's load."""
    from urllib.parse import urlencode

    from issues.models import Article

    n = ctx.sizes[0]
    archive_started = time.perf_counter()
    if not Article.objects.filter(issue__publication__slug="bench-archive").exists():
        data.make_search_archive(n)
    archive_seconds = time.perf_counter() - archive_started
    _collectstatic(ctx)
    path = "/search/?" + urlencode({"q": data.SEARCH_QUERY})
    client = Client(HTTP_HOST="127.0.0.1")
    response = client.get(path, secure=True)  # warm: templates and URLs
    assert response.status_code == 200, response.status_code
    caches["pages"].clear()  # count the queries of a rendered page, then of a kept one
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, secure=True)
    page = response.content.decode()
    found = re.search(r"of ([\d,]+) for", page)
    with CaptureQueriesContext(connection) as kept_queries:
        client.get(path, secure=True)
    env = {**ctx.env, "MONITOR_SEARCH_RATE": "100000000/m"}
    # every request a new URL: the page rendered each time, as for a query not asked before
    fresh_cpu, kept_cpu = [], []
    fresh_rates, fresh_p99s, _ = _served(
        ctx, path, env, seconds, connections, vary=True, cpu=fresh_cpu
    )
    # the same query again and again: the page kept per web process (issues.views)
    rates, p99s, load = _served(ctx, path, env, seconds, connections, cpu=kept_cpu)

    def median_cpu(runs: list[dict[str, float]]) -> dict[str, float]:
        return {part: statistics.median(run[part] for run in runs) for part in runs[0]}

    fresh_ms, kept_ms = median_cpu(fresh_cpu), median_cpu(kept_cpu)
    return figure(
        "search",
        "requests_per_s",
        rates,
        p99_ms=round(statistics.median(p99s), 2),
        p99_ms_runs=spread(p99s, 2),
        uncached_requests_per_s=round(statistics.median(fresh_rates), 1),
        uncached_p99_ms=round(statistics.median(fresh_p99s), 2),
        uncached_runs=spread(fresh_rates),
        # the web workers' CPU ms a request (PostgreSQL's and Redis's come on top)
        cpu_ms_per_request=kept_ms,
        uncached_cpu_ms_per_request=fresh_ms,
        load_average=round(os.getloadavg()[0], 1),
        page_cache="per web process until the archive changes (issues.search.archive_changed)",
        queries_per_page=len(queries),
        queries_per_kept_page=len(kept_queries),
        articles=Article.objects.count(),
        query=data.SEARCH_QUERY,
        results=int(found.group(1).replace(",", "")) if found else None,
        page_bytes=len(response.content),
        archive_build_seconds=round(archive_seconds, 1),
        server="gunicorn, 2 sync workers",
        load_generator=load,
        seconds_per_run=seconds,
        url_path=path,
        debug=settings.DEBUG,
    )
