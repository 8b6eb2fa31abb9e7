"""Child processes of the benchmarks: servers, Celery workers, and their memory."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench.env import ROOT, WORK

LOGS = WORK / "logs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


class Child:
    """A process started by the bench, stopped by its own id only."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.pid)], capture_output=True, text=True
        ).stdout.split()
        return [int(p) for p in out]

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            kids = self.children()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            for pid in kids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._log.close()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def smtp_sink(env: dict[str, str], reply: float = 0.0, data: float = 0.0) -> tuple[Child, int]:
    port = free_port()
    args = [sys.executable, "-m", "bench.smtpsink", "--port", str(port)]
    args += ["--reply-delay", str(reply), "--data-delay", str(data)]
    child = Child("smtpsink", args, env)
    wait_port(port, child.proc)
    return child, port


def esp_stub(env: dict[str, str], delay: float = 0.0) -> tuple[Child, int]:
    port = free_port()
    args = [sys.executable, "-m", "bench.espstub", "--port", str(port), "--delay", str(delay)]
    child = Child("espstub", args, env)
    wait_port(port, child.proc)
    return child, port


def celery_worker(name: str, env: dict[str, str], concurrency: int = 2) -> Child:
    """`celery -A monitor_site worker --concurrency=2` (prefork), as the README starts it."""
    child = Child(
        name,
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "monitor_site",
            "worker",
            "--loglevel=INFO",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            f"--hostname=bench-{uuid.uuid4().hex[:6]}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        env,
    )
    deadline = time.monotonic() + 60
    while " ready." not in child.log():
        if child.proc.poll() is not None or time.monotonic() > deadline:
            child.stop()
            raise RuntimeError(f"worker did not start:\n{child.log()[-3000:]}")
        time.sleep(0.2)
    return child


def _status_kb(pid: int, field: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_mb(pids: list[int]) -> dict[int, float]:
    return {pid: _status_kb(pid, "VmRSS") / 1024 for pid in pids}


def pss_mb(pids: list[int]) -> float:
    """The memory these processes take together: each one's proportional set size (a
    page shared by n processes counts 1/n in each), summed."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
    return total / 1024


def peak_rss_mb(pids: list[int]) -> dict[int, float]:
    """The high-water mark of each process's resident memory since it started."""
    return {pid: _status_kb(pid, "VmHWM") / 1024 for pid in pids}


def cpu_seconds(pid: int) -> float:
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0
