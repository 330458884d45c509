"""A failed browser test leaves its screenshots, in order, and its report says where; a passing
one leaves none; the SQLite variant of a browser test is skipped with the reason.

The fixtures and hooks of tests/browser/plugin.py run in a pytest of their own (a subprocess
over a directory of made-up tests), since a test cannot fail on purpose in this run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# One worker runs the made-up tests once for all the tests here (a module-scoped fixture runs
# once per worker that gets a test of the module).
pytestmark = pytest.mark.xdist_group("browser_failure_screenshots")

INI = """\
[pytest]
addopts = -p no:cacheprovider --strict-markers -rs
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
"""

CONFTEST = """\
import pytest

from tests.browser.plugin import (  # noqa: F401 - the browser tests' fixtures and hooks
    browser,
    chromium,
    page,
    pytest_configure,
    pytest_runtest_makereport,
    pytest_runtest_setup,
    snapshot,
)


@pytest.fixture(scope="session", params=["postgresql", "sqlite"])
def backend(request):
    return request.param
"""

TESTS = """\
import pytest


async def test_lands_on_an_error(page, snapshot):
    await page.set_content("<h1>Sign in</h1>")
    await snapshot(page, "sign in")
    await page.set_content("<h1>Consent</h1>")
    await snapshot(page, "consent")
    opened = await page.context.new_page()
    await opened.set_content("<h1>Help</h1>")
    await page.set_content("<h1>Something went wrong</h1>")
    assert await page.inner_text("h1") == "Signed in"


async def test_signs_in(page, snapshot):
    await page.set_content("<h1>Signed in</h1>")
    await snapshot(page, "signed in")
    assert await page.inner_text("h1") == "Signed in"


def test_on_a_database(backend):
    pass


@pytest.mark.every_backend
def test_on_every_database(backend):
    pass
"""


@dataclass(frozen=True)
class Run:
    output: str
    returncode: int
    screenshots: Path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    directory = tmp_path_factory.mktemp("browser-run")
    (directory / "pytest.ini").write_text(INI)
    (directory / "conftest.py").write_text(CONFTEST)
    (directory / "test_flows.py").write_text(TESTS)
    # Only the plugin these tests need: loading every installed one (hypothesis, schemathesis,
    # ...) would take longer than the run itself.
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")},
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        "PYTHONPATH": str(ROOT),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "pytest_asyncio.plugin", "-v", str(directory)],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(
        completed.stdout + completed.stderr,
        completed.returncode,
        directory / "test-artifacts" / "screenshots",
    )


def test_a_failed_test_leaves_the_pages_it_named_then_every_open_page(run: Run) -> None:
    shots = run.screenshots / "test_flows.py-test_lands_on_an_error"

    names = sorted(path.name for path in shots.iterdir())
    assert names == [
        "01-sign-in.png",
        "02-consent.png",
        "03-at-failure-page-1.png",
        "04-at-failure-page-2.png",
    ], run.output
    pictures = [(shots / name).read_bytes() for name in names]
    assert all(picture.startswith(PNG_SIGNATURE) for picture in pictures)
    assert len(set(pictures)) == len(pictures)


def test_the_failure_report_names_the_screenshot_directory(run: Run) -> None:
    assert run.returncode == 1, run.output
    assert "screenshots" in run.output
    assert str(run.screenshots / "test_flows.py-test_lands_on_an_error") in run.output


def test_a_passing_test_leaves_no_screenshots(run: Run) -> None:
    assert "test_signs_in PASSED" in run.output, run.output
    assert not (run.screenshots / "test_flows.py-test_signs_in").exists()


def test_the_sqlite_variant_is_skipped_with_the_reason_unless_marked_every_backend(
    run: Run,
) -> None:
    assert "test_on_a_database[postgresql] PASSED" in run.output, run.output
    assert "test_on_a_database[sqlite] SKIPPED" in run.output
    assert "browser tests run on PostgreSQL" in run.output
    assert "test_on_every_database[sqlite] PASSED" in run.output
