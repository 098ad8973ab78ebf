"""Headless Chromium for the host tools: print an HTML page to PDF (the same
page people see in a browser, not a second layout), take a PNG screenshot of
it, or dump its DOM after it was rendered.

    from tools import browser
    if browser.find_chromium() is None: ...        # say so, skip
    browser.html_to_pdf(html, Path("receipt.pdf"))
    browser.screenshot(html, Path("page.png"), width=1024, height=768)
    dom = browser.dump_dom(html)

Chromium is the Debian package `chromium` (/usr/bin/chromium); `$CHROMIUM`
names another binary. Each call runs one Chromium in a fresh, private
profile and temporary directory (removed afterwards), with networking off:
the pages are ours and self-contained, and they hold personal data, so the
page file and the output are owner-only and nothing is fetched from outside.
The sandbox is off (`--no-sandbox`): Chromium refuses to start as root
with it, and containers rarely allow the namespaces it needs; that is
acceptable only because the input is our own, escaped HTML, never a page
from elsewhere.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from tools.files import write_private

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
TIMEOUT = 60.0  # seconds for one Chromium run (a cold start takes about one here)


class BrowserError(Exception):
    """Chromium is missing, failed, or gave no output; the message says which."""


def find_chromium() -> str | None:
    """The Chromium binary to use, or None when there is none."""
    named = os.environ.get("CHROMIUM")
    if named:
        path = shutil.which(named)
        return path if path else None
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _flags() -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--disable-sync",
            "--disable-background-networking", "--disable-component-update",
            "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
            # No name resolves and no proxy is tried: a page that names an
            # outside resource renders without it.
            "--host-resolver-rules=MAP * ~NOTFOUND", "--no-proxy-server"]


def _run(html: str, extra: list[str], output: str | None) -> tuple[bytes, bytes]:
    """Run Chromium on `html` with `extra` flags. `output` is a file name in
    the private directory that Chromium writes (its bytes are returned), or
    None to return its stdout."""
    binary = find_chromium()
    if binary is None:
        raise BrowserError("Chromium is not installed (Debian: apt-get install chromium; "
                           "or set CHROMIUM to its path)")
    old = os.umask(0o077)
    try:
        with tempfile.TemporaryDirectory(prefix="lockctl-browser-") as tmp:
            page = Path(tmp) / "page.html"
            page.write_text(html, encoding="utf-8")
            env = dict(os.environ, HOME=tmp, XDG_CONFIG_HOME=tmp, XDG_CACHE_HOME=tmp)
            cmd = [binary, *_flags(), f"--user-data-dir={tmp}/profile", "--crash-dumps-dir="
                   f"{tmp}/crash", *[f.replace("{OUT}", f"{tmp}/{output}") for f in extra],
                   page.as_uri()]
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=env, cwd=tmp,
                                        start_new_session=True)
            except OSError as exc:
                raise BrowserError(f"cannot start Chromium ({binary}): {exc.strerror}") from None
            try:
                stdout, stderr = proc.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                _kill(proc)
                raise BrowserError(f"Chromium did not finish within {TIMEOUT:.0f} s") from None
            except BaseException:
                _kill(proc)
                raise
            if proc.returncode != 0:
                raise BrowserError(f"Chromium failed (exit status {proc.returncode}): "
                                   f"{_last_line(stderr)}")
            if output is None:
                return stdout, stderr
            try:
                return (Path(tmp) / output).read_bytes(), stderr
            except FileNotFoundError:
                raise BrowserError(f"Chromium wrote no output: {_last_line(stderr)}") from None
    finally:
        os.umask(old)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    # Chromium forks helpers (zygote, renderer): end the whole group it leads.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _last_line(stderr: bytes) -> str:
    lines = [ln for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    # Its dbus and GPU complaints in a container are noise; an ERROR about the
    # page or the output is what tells.
    for ln in reversed(lines):
        if "dbus" not in ln.lower():
            return ln.strip()[:300]
    return "no message"


def _write(out: Path, data: bytes) -> None:
    """Atomically and owner-only: what is printed here is personal data."""
    try:
        write_private(out, data)
    except OSError as exc:
        raise BrowserError(f"cannot write {out}: {exc.strerror}") from None


def html_to_pdf(html: str, out: Path) -> None:
    """Print the page to a PDF file (A4 unless the page's CSS @page says
    otherwise; no browser header or footer)."""
    data, stderr = _run(html, ["--no-pdf-header-footer", "--print-to-pdf-no-header",
                               "--print-to-pdf={OUT}"], "out.pdf")
    if not data.startswith(b"%PDF-"):
        raise BrowserError(f"Chromium's output is not a PDF: {_last_line(stderr)}")
    _write(out, data)


def screenshot(html: str, out: Path, width: int = 1280, height: int = 800) -> None:
    """A PNG of the page's first `width` x `height` CSS pixels."""
    if not (0 < width <= 10000 and 0 < height <= 10000):
        raise BrowserError("a screenshot is 1 to 10000 pixels wide and high")
    data, stderr = _run(html, [f"--window-size={width},{height}", "--screenshot={OUT}"],
                        "out.png")
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise BrowserError(f"Chromium's output is not a PNG: {_last_line(stderr)}")
    _write(out, data)


def dump_dom(html: str) -> str:
    """The page's DOM as serialised after loading (scripts run), as text."""
    stdout, stderr = _run(html, ["--dump-dom"], None)
    if not stdout.strip():
        raise BrowserError(f"Chromium dumped no DOM: {_last_line(stderr)}")
    return stdout.decode("utf-8", "replace")
