"""The tools that judge what readers and editors meet: axe-core (accessibility), the
Nu Html Checker (HTML validity), SpamAssassin (deliverability) and a strict MIME parse.

Nothing is downloaded here: Chromium and SpamAssassin come from apt, axe-core and
vnu-jar from npm (`make browser-deps`), Java from apt. When one is missing, the tests
that need it are skipped with the reason, and fail instead when CI is set, so that a CI
run never passes by checking nothing."""

from __future__ import annotations

import email
import email.message
import email.policy
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("MONITOR_CHROMIUM", "/usr/bin/chromium")
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
VNU_JAR = ROOT / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
# var/ is git-ignored; MONITOR_SCREENSHOTS=docs/screenshots refreshes the README's pictures.
SCREENSHOTS = Path(os.environ.get("MONITOR_SCREENSHOTS") or ROOT / "var" / "screenshots")
SERIOUS = ("serious", "critical")
# Violations in Django's own admin markup that are tolerated (rule -> selector); none
# since templates/admin/base_site.html underlines the breadcrumb links.
ADMIN_KNOWN: dict[str, str] = {}
SPAM_LIMIT = 0.5

# What the checks found, by page or message, for the summary at the end of the run.
FIGURES: dict[str, dict[str, Any]] = {"axe": {}, "vnu": {}, "spamassassin": {}}


def require(what: str, present: bool, how: str) -> None:
    """Skip with the reason outside CI; in CI a missing tool fails the test."""
    if present:
        return
    message = f"{what} is missing ({how})"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {message}", pytrace=False)
    pytest.skip(message)


def require_chromium() -> None:
    require(
        f"Chromium at {CHROMIUM}",
        os.access(CHROMIUM, os.X_OK),
        "apt-get install chromium; never `playwright install`",
    )


def require_axe() -> None:
    require("axe-core", AXE_JS.is_file(), "run `make browser-deps`")


def require_vnu() -> None:
    require("Java", shutil.which("java") is not None, "apt-get install default-jre-headless")
    require("vnu-jar", VNU_JAR.is_file(), "run `make browser-deps`")


def require_spamassassin() -> None:
    require(
        "SpamAssassin", shutil.which("spamassassin") is not None, "apt-get install spamassassin"
    )


# --- axe-core ------------------------------------------------------------------------


def axe_violations(page, name: str, *, exclude: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Run axe-core (its default rules: WCAG 2 A/AA and best practices) on the page,
    less the parts matched by the `exclude` selectors."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated, not added as a <script>: the page's policy refuses inline scripts.
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    # preload: false - axe would read the stylesheets by copying them into <style>
    # elements, which the pages' policy refuses; that copy serves one rule only
    # (css-orientation-lock), and none of our stylesheets has an orientation query.
    result = page.evaluate(
        """async (exclude) => await axe.run(
            {include: [['html']], exclude: exclude.map((s) => [s])},
            {resultTypes: ['violations'], preload: false})""",
        list(exclude),
    )
    violations = [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]],
        }
        for v in result["violations"]
    ]
    FIGURES["axe"][name] = violations
    return violations


def assert_accessible(
    page, name: str, *, exclude: tuple[str, ...] = (), known: dict[str, str] | None = None
) -> None:
    """No serious or critical axe violation on the page as it is now.

    `known` names violations of code that is not ours (rule id -> the selector of the
    only elements it may hit); they stay in the figures but do not fail the test."""
    known = known or {}
    serious = []
    for v in axe_violations(page, name, exclude=exclude):
        v["known"] = v["id"] in known and all(
            target[0].startswith(known[v["id"]]) for target in v["nodes"]
        )
        if v["impact"] in SERIOUS and not v["known"]:
            serious.append(v)
    assert serious == [], f"axe on {name}:\n{json.dumps(serious, indent=1)}"


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


# --- Content-Security-Policy ---------------------------------------------------------

# Runs in every document before the page's own scripts, and puts each violation on the
# console, where watch_csp reads it together with Chromium's own "Refused to ..." lines.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => console.error(
  "CSP violation: " + e.effectiveDirective + " refused " + (e.blockedURI || "inline") +
  " in " + e.documentURI + " (" + (e.sourceFile || "") + ":" + e.lineNumber + ") " +
  (e.sample || "")));
"""


def watch_csp(context, violations: list[str]) -> None:
    """Collect every Content-Security-Policy violation in the pages of `context`."""
    context.add_init_script(script=CSP_LISTENER)

    def seen(message) -> None:
        text = message.text
        if text.startswith("CSP violation") or "Content Security Policy" in text:
            violations.append(text)

    context.on("console", seen)


# --- the Nu Html Checker -------------------------------------------------------------


# Checked along with every batch: a run that finds nothing wrong here checked nothing.
VNU_CONTROL = "<!DOCTYPE html><html lang=en><title>x</title><p><div></p><img src=x.png>"


def vnu_errors(documents: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Check HTML documents (name -> text) in one run of vnu.jar; the errors by name."""
    documents = {**documents, "(control)": VNU_CONTROL}
    with tempfile.TemporaryDirectory() as folder:
        names: dict[str, str] = {}
        for n, (name, text) in enumerate(documents.items()):
            path = Path(folder) / f"{n:03d}.html"
            path.write_text(text, encoding="utf-8")
            names[path.resolve().as_uri()] = name
        files = [str(Path(folder) / f"{n:03d}.html") for n in range(len(documents))]
        run = subprocess.run(
            ["java", "-jar", str(VNU_JAR), "--errors-only", "--format", "json", *files],
            capture_output=True,
            text=True,
            timeout=300,
        )
    try:
        messages = json.loads(run.stderr or run.stdout)["messages"]
    except (ValueError, KeyError):
        raise AssertionError(f"vnu.jar gave no report:\n{run.stdout}\n{run.stderr}") from None
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in documents}
    for message in messages:
        url = message.get("url", "")
        name = names.get(url) or names.get(url.replace("file:/", "file:///", 1))
        if name is None:
            raise AssertionError(f"vnu.jar: {message}")
        if message.get("type") in ("error", "non-document-error"):
            found[name].append({k: message.get(k) for k in ("message", "extract", "lastLine")})
    control = found.pop("(control)")
    assert len(control) >= 2, f"vnu.jar missed the errors of the control document: {control}"
    FIGURES["vnu"].update(found)
    return found


# --- SpamAssassin --------------------------------------------------------------------


def spamassassin(raw: bytes, name: str) -> tuple[float, list[str]]:
    """Score a message offline (-L: no network tests; no Bayes): the score and the
    rules that fired."""
    with tempfile.TemporaryDirectory() as home:  # it writes ~/.spamassassin
        run = subprocess.run(
            ["spamassassin", "-L", "-x", "--cf=use_bayes 0"],
            input=raw,
            capture_output=True,
            env={**os.environ, "HOME": home},
            timeout=180,
        )
    checked = email.message_from_bytes(run.stdout, policy=email.policy.compat32)
    status = " ".join(str(checked["X-Spam-Status"] or "").split())
    score = re.search(r"score=(-?[\d.]+)", status)
    assert score, f"SpamAssassin gave no score:\n{run.stdout[:3000]!r}\n{run.stderr!r}"
    tests = re.search(r"tests=(\S*)", status)
    rules = [r for r in (tests.group(1) if tests else "").split(",") if r and r != "none"]
    FIGURES["spamassassin"][name] = (float(score.group(1)), rules)
    return float(score.group(1)), rules


# --- MIME ----------------------------------------------------------------------------


def strict_parse(raw: bytes) -> email.message.EmailMessage:
    """Parse under email.policy.strict, reading every header and every part, so that
    any defect raises or shows."""
    message = email.message_from_bytes(raw, policy=email.policy.strict)
    for part in message.walk():
        assert part.defects == [], part.defects
        for _, value in part.items():
            assert list(getattr(value, "defects", ())) == [], (value, value.defects)
        if not part.is_multipart():
            part.get_content()
    return message


def long_lines(raw: bytes) -> list[int]:
    """Numbers of the lines longer than RFC 5322's 998 octets (CRLF not counted)."""
    return [n for n, line in enumerate(raw.split(b"\r\n"), 1) if len(line) > 998]


def link(message: email.message.EmailMessage, pattern: str) -> str:
    """The first URL in the message's plain text whose path contains `pattern`."""
    text = message.get_body(("plain",)).get_content()
    found = re.search(rf"https?://[^\s<>]*?{pattern}[^\s<>]*/", text)
    assert found, f"no link like {pattern} in:\n{text}"
    return found.group(0)
