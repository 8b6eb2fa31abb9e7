"""Draw docs/benchmarks.png from bench/results/latest.json: messages/s of the SMTP and
ESP paths against the peer.

    python -m bench.chart

matplotlib is not a dependency of Monitor: the first run makes a throwaway virtualenv
for it under var/bench/chart-venv and draws from there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.env import RESULTS, ROOT, WORK

VENV = WORK / "chart-venv"
OUT = ROOT / "docs" / "benchmarks.png"


def bars(results: dict) -> list[tuple[str, float, str]]:
    r = results["results"]
    out = []
    peer = r.get("peer", {})
    if "theirs_messages_per_s" in peer:
        out.append(
            (
                f"django-newsletter\nsubmit_newsletter\n{peer['n']:,}",
                peer["theirs_messages_per_s"],
                "#999999",
            )
        )
    for name, label, colour in (
        ("smtp", "Monitor SMTP", "#1f5fa8"),
        ("esp_batch", "Monitor ESP batch", "#2f8f4e"),
    ):
        for key, value in r.get(name, {}).items():
            if key.startswith("n") and isinstance(value, dict):
                out.append((f"{label}\n{int(key[1:]):,}", value["messages_per_s"], colour))
    return out


def draw(results_path: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = json.loads(results_path.read_text())
    data = bars(results)
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=110)
    labels = [d[0] for d in data]
    values = [d[1] for d in data]
    ax.bar(labels, values, color=[d[2] for d in data])
    ax.set_ylabel("messages per second")
    for i, v in enumerate(values):
        ax.text(i, v + max(values) * 0.01, f"{v:,.0f}", ha="center", fontsize=9)
    ax.set_title(
        f"Sending one issue: Monitor vs django-newsletter "
        f"({results['database']}, {results['broker']}, {results['cores']} cores)",
        fontsize=10,
    )
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"wrote {out}")


def main() -> int:
    results = RESULTS / "latest.json"
    try:
        found = bars(json.loads(results.read_text()))
    except (OSError, ValueError, KeyError) as exc:
        print(f"{results}: no results to draw ({exc}); run `make bench` first", file=sys.stderr)
        return 1
    if not found:
        print(
            f"{results}: no smtp, esp_batch or peer result (the last run left them out "
            f"with --only); {OUT} is left as it was",
            file=sys.stderr,
        )
        return 1
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        python = VENV / "bin" / "python"
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "matplotlib>=3.8"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
            )
        code = (
            f"import sys; sys.path.insert(0, {str(ROOT)!r}); from pathlib import Path; "
            f"from bench.chart import draw; draw(Path({str(results)!r}), Path({str(OUT)!r}))"
        )
        subprocess.run([str(python), "-c", code], check=True)
        return 0
    draw(results, OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
