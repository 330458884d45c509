"""Screenshots of a browser test, written only when it fails.

A test names the pages it passes through (`await snapshot(page, "consent")`); the shots stay
in memory. If the test fails, they are written, numbered in the order taken, followed by a
full-page shot of every page still open, so the directory shows the path the browser took
and where it stopped:

    test-artifacts/screenshots/test_sign_in.py-test_consent-postgresql/
        01-sign-in.png  02-consent.png  03-at-failure.png
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

# A page that cannot be drawn within this (stuck navigation, crashed renderer) is left out
# rather than holding up the report of the failure.
FAILURE_SHOT_TIMEOUT_MS = 10_000


def artifacts_directory(item: pytest.Item) -> Path:
    """Where the screenshots of `item` go: one directory per test under
    `<rootdir>/test-artifacts/screenshots`, named after its file, name and parameters."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{item.path.name}-{item.name}").strip("-")
    return item.config.rootpath / "test-artifacts" / "screenshots" / name


class Snapshots:
    """The screenshots of one test: named ones taken on the way, written only on failure."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._taken: list[tuple[str, bytes]] = []

    async def __call__(self, page: Page, name: str) -> None:
        """Take a full-page screenshot of `page` now, kept under `name` in case the test
        fails later."""
        self._taken.append((name, await page.screenshot(full_page=True)))

    async def save(self, open_pages: Sequence[Page]) -> list[Path]:
        """Write the named shots and one of each page in `open_pages`, numbered in order, into
        a fresh `directory`; the paths written."""
        shots = list(self._taken)
        drawable = [page for page in open_pages if not page.is_closed()]
        for index, page in enumerate(drawable, start=1):
            name = "at-failure" if len(drawable) == 1 else f"at-failure-page-{index}"
            try:
                png = await page.screenshot(full_page=True, timeout=FAILURE_SHOT_TIMEOUT_MS)
            except PlaywrightError:
                continue
            shots.append((name, png))
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True)
        paths = []
        for number, (name, png) in enumerate(shots, start=1):
            slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "page"
            path = self.directory / f"{number:02d}-{slug}.png"
            path.write_bytes(png)
            paths.append(path)
        return paths
