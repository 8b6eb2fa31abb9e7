"""What `make run` does before starting the processes can be repeated safely."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

from tests.helpers import ROOT

STEPS = [["migrate", "--noinput"], ["load_demo"], ["ensure_admin"]]


def run_setup(tmp_path) -> list[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "monitor_site.settings",
        "DJANGO_DEBUG": "1",
        "MONITOR_VAR_DIR": str(tmp_path),
    }
    outputs = []
    for step in STEPS:
        result = subprocess.run(
            [sys.executable, "manage.py", *step],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        outputs.append(result.stdout)
    return outputs


def table_counts(db) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if not r[0].startswith("sqlite_") and r[0] not in {"django_session"}
        ]
        return {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608


def test_setup_twice_creates_one_admin_and_duplicates_nothing(tmp_path):
    first = run_setup(tmp_path)
    assert "password:" in first[2]
    counts = table_counts(tmp_path / "monitor.sqlite3")

    second = run_setup(tmp_path)

    assert "password:" not in second[2]
    assert "already exists" in second[2]
    assert table_counts(tmp_path / "monitor.sqlite3") == counts
    assert counts["auth_user"] == 3  # the admin, the demo editor and analyst
    assert first[1].count("password:") == 2 and "password:" not in second[1]
