"""`make bench`: every benchmark, one JSON object per line, then a short table.

python -m bench                     # all of them
python -m bench --only smtp_real,esp_batch_real --runs 1 --sizes 10000    # some
python -m bench --runs 3 --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field

from bench import env as bench_env

ORDER = (
    "render",
    "fanout",
    "archive",
    "search",
    "smtp_limit",
    "smtp",
    "smtp_real",
    "esp_limit",
    "esp_batch",
    "esp_batch_real",
    "peer",
)


# Benches that need no subscribers (render reads 10,000 of them): making 100,000 is skipped
# when only these run.
READERLESS = {"archive", "search"}


@dataclass
class Context:
    target: bench_env.Target
    env: dict[str, str]
    issue: object = None
    runs: int = 5
    sizes: tuple[int, ...] = (10_000, 100_000)
    peer_n: int = 10_000
    results: dict[str, dict] = field(default_factory=dict)


def _common(ctx: Context) -> dict:
    return {
        "database": ctx.target.database,
        "database_note": ctx.target.database_note,
        "broker": ctx.target.broker,
        "broker_note": ctx.target.broker_note,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }


def _rss(add, name: str, result: dict) -> None:
    """The worker's memory: its processes' RSS summed counts the pages the pool shares
    with the parent once per process; their PSS summed counts each page once."""
    rss, pss = result.get("peak_worker_rss_total_mb"), result.get("peak_worker_pss_total_mb")
    if rss is not None and pss is not None:
        figure = f"{pss:,.0f} MB together (RSS summed {rss:,.0f})"
        add(f"{name} worker memory", figure, "<= 300 MB", pss <= 300)


def _table(ctx: Context) -> str:
    r = {name: result for name, result in ctx.results.items() if "error" not in result}
    rows = []

    def add(name: str, figure: str, goal: str, ok: bool | None) -> None:
        rows.append((name, figure, goal, "-" if ok is None else ("met" if ok else "MISSED")))

    if "fanout" in r:
        v = r["fanout"]["records_per_s"]
        add("fanout (100k)", f"{v:,.0f} records/s", ">= 200,000", v >= 200_000)
    if "render" in r:
        add("render (1 core)", f"{r['render']['messages_per_s']:,.0f} messages/s", "", None)
    render = r.get("render", {}).get("messages_per_s")
    for name, goal in (("smtp", 3_000), ("esp_batch", 25_000)):
        if name in r:
            for n in ctx.sizes:
                v = r[name].get(f"n{n}")
                if v:
                    add(
                        f"{name} ({n // 1000}k)",
                        f"{v['messages_per_s']:,.0f} messages/s",
                        f">= {goal:,}",
                        v["messages_per_s"] >= goal,
                    )
                    if "of_limit" in v:
                        add(
                            f"{name} of limit ({n // 1000}k)",
                            f"{v['of_limit']:.2f}",
                            ">= 0.6",
                            v["of_limit"] >= 0.6 if n >= 100_000 else None,
                        )
            _rss(add, name, r[name])
    # The realistic benches' absolute goals scale with the machine's render speed:
    # (render 14,000 -> goal, render 35,000 -> goal), in between by a straight line.
    for name, (low, high) in (("smtp_real", (3_000, 5_000)), ("esp_batch_real", (15_000, 25_000))):
        if name not in r:
            continue
        goal = None
        if render:
            share = min(1.0, max(0.0, (render - 14_000) / 21_000))
            goal = low + (high - low) * share
        for n in ctx.sizes:
            v = r[name].get(f"n{n}")
            if not v:
                continue
            add(
                f"{name} ({n // 1000}k)",
                f"{v['messages_per_s']:,.0f} messages/s",
                f">= {goal:,.0f}" if goal else "",
                v["messages_per_s"] >= goal if goal and n >= 100_000 else None,
            )
            if "of_zero_latency" in v:
                add(
                    f"{name} of zero-latency ({n // 1000}k)",
                    f"{v['of_zero_latency']:.2f}",
                    ">= 0.8",
                    v["of_zero_latency"] >= 0.8 if n >= 100_000 else None,
                )
            if "of_limit" in v:  # of the bare client against the same delays
                add(
                    f"{name} of limit ({n // 1000}k)",
                    f"{v['of_limit']:.2f}",
                    ">= 0.6",
                    v["of_limit"] >= 0.6 if n >= 100_000 else None,
                )
            cpu = v.get("cpu_us_per_message")
            if cpu:
                parts = ", ".join(f"{k} {c:.1f}" for k, c in cpu.items())
                add(f"{name} CPU ({n // 1000}k)", f"{parts} µs/message", "", None)
        _rss(add, name, r[name])
    for name in ("smtp_limit", "esp_limit"):
        if name in r:
            for n in ctx.sizes:
                v, real = r[name].get(f"n{n}"), r[name].get("real", {}).get(f"n{n}")
                if v:
                    figure = f"{v['messages_per_s']:,.0f} messages/s"
                    if real:
                        figure += f" ({real['messages_per_s']:,.0f} with latency)"
                    add(f"{name} ({n // 1000}k)", figure, "", None)
    if "archive" in r:
        a = r["archive"]
        add(
            "archive",
            f"{a['requests_per_s']:,.0f} requests/s",
            ">= 1,000",
            a["requests_per_s"] >= 1000,
        )
        add("archive p99", f"{a['p99_ms']:.1f} ms", "", None)
        add(
            "archive queries",
            f"{a['queries_per_page']} per page",
            "<= 6",
            a["queries_per_page"] <= 6,
        )
    if "search" in r:
        s = r["search"]
        add(
            "search",
            f"{s['requests_per_s']:,.0f} requests/s",
            ">= 500",
            s["requests_per_s"] >= 500,
        )
        add("search p99", f"{s['p99_ms']:.1f} ms", "", None)
        add(
            "search, not kept",
            f"{s['uncached_requests_per_s']:,.0f} requests/s, p99 {s['uncached_p99_ms']:.1f} ms",
            "",
            None,
        )
        for key, label in (
            ("cpu_ms_per_request", "kept"),
            ("uncached_cpu_ms_per_request", "not kept"),
        ):
            parts = ", ".join(f"{part} {ms:.2f}" for part, ms in s[key].items())
            add(f"search CPU, {label}", f"{parts} ms/request", "", None)
        add(
            "search queries",
            f"{s['queries_per_page']} per page",
            "<= 3",
            s["queries_per_page"] <= 3,
        )
    if "peer" in r:
        p = r["peer"]
        add(
            f"peer ({p['n'] // 1000}k)",
            f"ours {p['ours_messages_per_s']:,.0f} / django-newsletter "
            f"{p['theirs_messages_per_s']:,.0f} msg/s",
            "",
            None,
        )
        add("peer ratio", f"{p['ratio']:.1f}x", ">= 20", p["ratio"] >= 20)
    width = [max(len(row[i]) for row in rows) for i in range(4)] if rows else [0] * 4
    lines = [
        f"Monitor benchmarks: {ctx.target.database}, {ctx.target.broker}, "
        f"{os.cpu_count()} cores, medians of {ctx.runs} runs"
    ]
    for row in rows:
        lines.append("  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(ORDER), help="comma-separated benches")
    parser.add_argument("--runs", type=int, default=5, help="repeats of each measurement")
    parser.add_argument("--sizes", default="10000,100000", help="audiences of the sending benches")
    parser.add_argument("--peer-n", type=int, default=10_000, help="audience for the peer")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args(argv)
    chosen = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = set(chosen) - set(ORDER)
    if unknown:
        parser.error(f"unknown bench: {', '.join(sorted(unknown))}")

    target = bench_env.choose()
    child_env = bench_env.apply(target)
    bench_env.create_database(target)
    print(f"# database: {target.database_note}; broker: {target.broker_note}", file=sys.stderr)

    import django

    django.setup()
    from bench import benches, data, peer

    ctx = Context(
        target=target,
        env=child_env,
        runs=args.runs,
        sizes=tuple(int(s) for s in args.sizes.split(",")),
        peer_n=args.peer_n,
    )
    started = time.monotonic()
    failed = []
    try:
        _purge_queues()
        data.migrate()
        ctx.issue = data.seed_issue()
        if set(chosen) - READERLESS:
            data.make_subscribers(ctx.issue.publication, max(100_000, *ctx.sizes, ctx.peer_n))
        funcs = {
            "render": benches.render,
            "fanout": benches.fanout,
            "archive": benches.archive,
            "search": benches.search,
            "smtp_limit": benches.smtp_limit,
            "smtp": benches.smtp,
            "smtp_real": benches.smtp_real,
            "esp_limit": benches.esp_limit,
            "esp_batch": benches.esp_batch,
            "esp_batch_real": benches.esp_batch_real,
            "peer": peer.peer,
        }
        for name in [b for b in ORDER if b in chosen]:
            t = time.monotonic()
            try:
                result = funcs[name](ctx)
            except Exception as exc:  # one broken bench must not hide the others
                failed.append(name)
                result = {"bench": name, "error": f"{type(exc).__name__}: {exc}"[:2000]}
            result.update(_common(ctx), seconds=round(time.monotonic() - t, 1))
            ctx.results[name] = result
            print(json.dumps(result), flush=True)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            bench_env.drop_database(target)
    bench_env.RESULTS.mkdir(parents=True, exist_ok=True)
    (bench_env.RESULTS / "latest.json").write_text(
        json.dumps(
            {
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "total_seconds": round(time.monotonic() - started, 1),
                **_common(ctx),
                "results": ctx.results,
            },
            indent=2,
        )
        + "\n"
    )
    print()
    print(_table(ctx))
    print(f"({time.monotonic() - started:.0f} s; bench/results/latest.json)")
    return 1 if failed else 0


def _purge_queues() -> None:
    from monitor_site.celery import app

    with app.connection_for_write() as conn:
        for queue in ("default", "send"):
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:  # noqa: S112 - a queue never declared holds nothing
                continue


if __name__ == "__main__":
    sys.exit(main())
