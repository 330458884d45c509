"""The browser tests' fixtures and hooks that need no service (tests/browser/conftest.py
imports them; a pytest of made-up tests can too, see test_failure_screenshots.py).

- `browser`: chromium at /usr/bin/chromium (`executable_path`: Playwright never downloads a
  browser here), headless, launched once per test worker. A missing chromium fails the tests
  that need it, with the command that installs it; it is never a skip.
- `page`: a new browser context (cookies and storage of its own) and page per test.
- `snapshot`: `await snapshot(page, "consent")` keeps a named screenshot; when the test fails,
  those and a shot of every page still open are written under
  `test-artifacts/screenshots/<test>/` and the report names that directory (screenshots.py).
- The SQLite variant of a test is skipped, with the reason, unless it is marked
  `every_backend`: the hosted pages and their flows are the same on both backends, whose
  services every other test already runs on.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.browser.screenshots import Snapshots, artifacts_directory

CHROMIUM = Path("/usr/bin/chromium")
# No GPU, no sandbox (containers run as root), and none of chromium's own connections to
# Google's services: the machine has no internet, and their failures only make noise.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# On a CI box with two workers on two cores (and the service, its database and chromium all
# on it) a page can take seconds to draw: more than the 5 s Playwright's assertions wait by
# default. A test still fails, only later; a page that never comes is still a failure.
ASSERTION_TIMEOUT_MS = 20_000
ACTION_TIMEOUT_MS = 30_000
SQLITE_SKIP_REASON = (
    "browser tests run on PostgreSQL: the pages are the same on both backends, whose services "
    "the other tests cover (mark a test every_backend to run it on SQLite too)"
)
CALL_REPORT = pytest.StashKey[pytest.TestReport]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "every_backend: a browser test that runs on SQLite as well as PostgreSQL"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip the SQLite variant before any fixture is set up (no SQLite database is migrated
    for a test that will not use it)."""
    callspec = getattr(item, "callspec", None)
    backend = callspec.params.get("backend") if callspec is not None else None
    if backend == "sqlite" and item.get_closest_marker("every_backend") is None:
        pytest.skip(SQLITE_SKIP_REASON)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[CALL_REPORT] = report
        if report.failed and "snapshot" in getattr(item, "fixturenames", ()):
            # Written by the `page` fixture's teardown, right after this report: the path is
            # known now, and a report section travels to the xdist controller with the report.
            report.sections.append(("screenshots", str(artifacts_directory(item))))
    return report


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium; a failure, never a skip, when it is not installed."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"Debian's chromium is not installed ({CHROMIUM} is missing): "
            "`apt-get install chromium` (.ci/run does it). The browser tests never download one."
        )
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """Chromium, headless, for this test worker."""
    expect.set_options(timeout=ASSERTION_TIMEOUT_MS)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def snapshot(request: pytest.FixtureRequest) -> Snapshots:
    """`await snapshot(page, name)`: a screenshot kept in case the test fails. Screenshots an
    earlier run of this test left behind are removed: they would tell of a failure that is not
    this run's."""
    directory = artifacts_directory(request.node)
    shutil.rmtree(directory, ignore_errors=True)
    return Snapshots(directory)


@pytest.fixture
async def page(
    browser: Browser, snapshot: Snapshots, request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    """A page in a browser context of its own; on failure, screenshots of every page the
    context still has open (after the test's named ones)."""
    context = await browser.new_context()
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        yield await context.new_page()
        call = request.node.stash.get(CALL_REPORT, None)
        if call is not None and call.failed:
            await snapshot.save(context.pages)
    finally:
        await context.close()
