"""Pictures of an email as readers see it: headless Chromium at desktop and phone width.

Debian's chromium through Playwright (never `playwright install`: no browser downloads
here), with the flags docs/ARCHITECTURE.md lists ("Rendering facts"). A 375 px viewport
works; `--window-size` does not go below 500 px, so the width is set on the page.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from newsletter.errors import NewsletterError

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
DESKTOP_WIDTH, PHONE_WIDTH, HEIGHT = 1000, 375, 800
IMAGE_WAIT_MS = 5000


@contextlib.contextmanager
def chromium(executable: str = CHROMIUM) -> Iterator[Browser]:
    if not Path(executable).is_file():
        raise NewsletterError(f"Chromium not found at {executable}: install Debian's "
                              "`chromium` package to take screenshots")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def open_page(browser: Browser, html: str, width: int, *,
              color_scheme: str = "light") -> Iterator[Page]:
    """The email in a page `width` px wide; remote images get a few seconds, no more."""
    page = browser.new_page(viewport={"width": width, "height": HEIGHT},
                            color_scheme=color_scheme)
    try:
        page.set_content(html, wait_until="domcontentloaded")
        with contextlib.suppress(PlaywrightTimeout):
            page.wait_for_load_state("load", timeout=IMAGE_WAIT_MS)
        yield page
    finally:
        page.close()


def take_screenshots(html: str, out: Path, executable: str = CHROMIUM) -> list[Path]:
    """Write out/desktop.png and out/phone.png (whole page) and return their paths."""
    paths = []
    with chromium(executable) as browser:
        for name, width in (("desktop", DESKTOP_WIDTH), ("phone", PHONE_WIDTH)):
            with open_page(browser, html, width) as page:
                path = out / f"{name}.png"
                page.screenshot(path=str(path), full_page=True)
                paths.append(path)
    return paths
