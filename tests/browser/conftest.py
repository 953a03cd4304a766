"""Dashboard tests: the local stack as `make run` starts it, driven in headless Chromium.

Chromium is Debian's package (`make test` installs it when missing); Playwright drives it
through `executable_path` (it cannot download browsers of its own here).
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.stack_process import StackProcess, running_stack

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE.parent / "artifacts"


def chromium_path() -> str:
    """CHROMIUM, else Debian's chromium on PATH."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium is not installed: `make test` installs Debian's chromium "
                    "(apt-get install chromium), or set CHROMIUM to its path")
    return found


@pytest.fixture(scope="module")
def stack() -> Iterator[StackProcess]:
    """A local stack on the automations above, with workers and the admin token."""
    # Private HTTP allowed: partner-sync calls a closed local port (a partner that is down).
    with running_stack({"AUTOMATIONS_DIR": str(HERE / "automations.yaml"),
                        "ALLOW_PRIVATE_HTTP": "true"}) as started:
        yield started


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect, sync_playwright

    # A loaded 2-core machine (several suites at once) needs more than Playwright's 5 s.
    expect.set_options(timeout=20_000)

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                              args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, stack):
    """A fresh tab (its own session storage); fails the test on any script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.set_default_timeout(20_000)
    yield tab
    context.close()
    assert not errors, errors


def shot(page, name: str) -> Path:
    """Save a full-page screenshot under tests/artifacts/ (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
