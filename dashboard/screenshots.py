"""Render every dashboard page in headless Chromium and save one PNG per page.

    python -m dashboard.screenshots --out docs/screenshots [--home data]

Starts ``streamlit run dashboard/app.py`` on a free port (FORECASTING_HOME from ``--home`` or the
environment), opens each page with Playwright driving an installed Chromium (Debian's
``/usr/bin/chromium``; Playwright's own browser download is not needed), waits until the page has
rendered, and reports per page: exceptions shown, charts drawn, seconds to render. Used by
``tests/dashboard/test_browser.py`` and to refresh the README screenshots.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = {
    "home": "",
    "forecasting": "forecasting",
    "inventory": "inventory",
    "performance": "performance",
    "data": "data",
}
TITLES = {
    "home": "M5 demand forecasting",
    "forecasting": "Forecasting",
    "inventory": "Inventory",
    "performance": "Model performance",
    "data": "Data",
}
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@dataclass
class PageShot:
    """What one page showed."""

    page: str
    path: Path
    seconds: float
    exceptions: int
    charts: int
    title: str


def find_chromium() -> str | None:
    """Path of an installed Chromium/Chrome, or None."""
    env = os.environ.get("CHROMIUM_PATH")
    if env and Path(env).exists():
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def streamlit_server(env: dict[str, str] | None = None, timeout: float = 60.0) -> Iterator[str]:
    """Run the dashboard with ``streamlit run`` on a free port; yield its base URL; stop it."""
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "dashboard" / "app.py"),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"streamlit did not start: {log.read().decode()[-2000:]}")
                time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_rendered(page: object, timeout_ms: int) -> None:
    """Wait for the script run to finish: a title is shown and the 'running' widget is gone."""
    page.wait_for_selector("h1", timeout=timeout_ms)  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        """() => !document.querySelector('[data-testid="stStatusWidget"]')
                 && document.querySelectorAll('[data-testid="stSkeleton"]').length === 0""",
        timeout=timeout_ms,
    )
    page.wait_for_timeout(800)  # type: ignore[attr-defined]  # let Vega draw


def capture(
    out_dir: Path,
    env: dict[str, str] | None = None,
    width: int = 1440,
    timeout_ms: int = 90_000,
    pages: dict[str, str] | None = None,
) -> list[PageShot]:
    """Screenshot every page into ``out_dir`` (``<page>.png``)."""
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError("no Chromium found (apt-get install chromium)")
    out_dir.mkdir(parents=True, exist_ok=True)
    shots: list[PageShot] = []
    with streamlit_server(env) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            ctx = browser.new_context(
                viewport={"width": width, "height": 900}, device_scale_factor=1
            )
            page = ctx.new_page()
            for i, (name, path) in enumerate((pages or PAGES).items()):
                t0 = time.monotonic()
                if i == 0:
                    page.goto(f"{url}/{path}", wait_until="domcontentloaded")
                else:  # navigate inside the app (one session, no reload of the frontend)
                    page.locator(f'[data-testid="stSidebarNav"] a[href$="/{path}"]').first.click()
                    page.wait_for_url(f"{url}/{path}", timeout=timeout_ms)
                    page.wait_for_function(
                        "t => document.querySelector('h1') && document.querySelector('h1').innerText === t",
                        arg=TITLES[name],
                        timeout=timeout_ms,
                    )
                _wait_rendered(page, timeout_ms)
                seconds = time.monotonic() - t0
                # Streamlit scrolls inside its main container: grow the viewport to show it all.
                height = page.evaluate(
                    """() => { const m = document.querySelector('[data-testid="stMain"]')
                               || document.querySelector('section.main');
                               return m ? m.scrollHeight : document.body.scrollHeight; }"""
                )
                page.set_viewport_size({"width": width, "height": min(max(int(height), 900), 6000)})
                page.wait_for_timeout(500)
                target = out_dir / f"{name}.png"
                page.screenshot(path=str(target), full_page=True)
                page.set_viewport_size({"width": width, "height": 900})
                shots.append(
                    PageShot(
                        page=name,
                        path=target,
                        seconds=seconds,
                        exceptions=page.locator('[data-testid="stException"]').count(),
                        charts=max(
                            page.locator('[data-testid="stVegaLiteChart"]').count(),
                            page.locator(".vega-embed").count(),
                        ),
                        title=page.locator("h1").first.inner_text(),
                    )
                )
        finally:
            browser.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--home", type=Path, default=None, help="FORECASTING_HOME to show")
    parser.add_argument("--width", type=int, default=1440)
    args = parser.parse_args()
    env = {}
    if args.home:
        home = args.home.resolve()
        env = {
            "FORECASTING_HOME": str(home),
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        }
    for shot in capture(args.out, env, width=args.width):
        sys.stdout.write(
            f"{shot.page:12s} {shot.seconds:5.1f}s charts={shot.charts} "
            f"exceptions={shot.exceptions} -> {shot.path}\n"
        )


if __name__ == "__main__":
    main()
