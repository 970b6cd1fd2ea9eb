"""The playground in a real browser: Debian's `chromium`, driven by Playwright, against `paddock serve`.

Nothing is downloaded at test time: Playwright is pointed at the system Chromium
(`make test` installs it) instead of fetching its own, and axe-core comes inside the
axe-playwright-python wheel. Every test saves a screenshot under `test-output/browser/`, runs
axe-core on the page, and fails if the page asked anyone but the server for anything.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, ConsoleMessage, FileChooser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.live_server import REPO, LiveServer, paddock_process

CHROMIUM = Path(os.environ.get("PADDOCK_CHROMIUM", "/usr/bin/chromium"))
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "test-output" / "browser"
ADMIN_KEY = "sk-browser-admin-0123456789"
USER_KEY = "sk-browser-user-0123456789"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
BLOCKING_IMPACTS = {"serious", "critical"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`paddock serve` with an admin key and a normal key, one job at a time (so a second task
    waits as PENDING), and a short shutdown grace so teardown never waits on a long job."""
    tmp = tmp_path_factory.mktemp("browser")
    key_file = tmp / "keys.yaml"
    key_file.write_text(
        f"keys:\n  - key: {ADMIN_KEY}\n    tenant: ops\n    admin: true\n"
        f"  - key: {USER_KEY}\n    tenant: user\n"
    )
    env = {
        "PADDOCK_API_KEYS": str(key_file),
        "PADDOCK_MAX_CONCURRENT_JOBS": "1",
        "PADDOCK_SHUTDOWN_GRACE_S": "1",
        "OMP_NUM_THREADS": "1",
    }
    with paddock_process(tmp, env=env, keys=[ADMIN_KEY, USER_KEY]) as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Module-scoped: sync Playwright runs an event loop of its own in this thread for as long as
    it is open, and the async tests of other modules need the thread's loop slot free."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser
        browser.close()


@dataclass
class Visit:
    """One page of the playground, with what it requested and what it complained about."""

    page: Page
    server: LiveServer
    name: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def open(self, key: str | None = None) -> None:
        """Load the page and, with `key`, type it in and press Enter, as a user would."""
        self.page.goto(self.server.base_url + "/")
        if key is not None:
            self.page.get_by_label("API key", exact=True).fill(key)
            self.page.get_by_label("API key", exact=True).press("Enter")
            self.page.wait_for_selector("#model option", state="attached")

    def screenshot(self, suffix: str = "") -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.name}{suffix}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_accessible(self) -> None:
        """axe-core finds no serious or critical violation on the page as it is now."""
        result = Axe().run(self.page)
        blocking = [v for v in result.response["violations"] if v.get("impact") in BLOCKING_IMPACTS]
        assert not blocking, [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in blocking]

    def tab_to(self, selector: str, limit: int = 60) -> None:
        """Press Tab until `selector` has the focus (it must be reachable by keyboard), and check
        that the focus is visible there."""
        for _ in range(limit):
            self.page.keyboard.press("Tab")
            if self.page.locator(selector).evaluate("el => el === document.activeElement"):
                outline = self.page.locator(selector).evaluate("el => getComputedStyle(el).outlineStyle")
                assert outline != "none", f"no visible focus on {selector}"
                return
        raise AssertionError(f"{selector} was not reached with {limit} presses of Tab")

    def choose_file_by_keyboard(
        self, selector: str, attempts: int = 3, wait_ms: float = 5_000
    ) -> FileChooser:
        """Press Space on the focused file input `selector` and return the file chooser it opens.

        Headless Chromium now and then drops the keystroke that asks for the chooser (a known
        Playwright flake: the chooser never comes, however long one waits), so a press that
        brings nothing in `wait_ms` is re-fired, up to `attempts` presses. A page that never
        opens a chooser from the keyboard still fails."""
        for _ in range(attempts):
            assert self.page.locator(selector).evaluate("el => el === document.activeElement"), (
                f"{selector} lost the focus"
            )
            try:
                with self.page.expect_file_chooser(timeout=wait_ms) as chooser:
                    self.page.keyboard.press("Space")
                return chooser.value
            except PlaywrightTimeoutError:
                continue
        raise AssertionError(f"Space on {selector} opened no file chooser in {attempts} presses")


@pytest.fixture
def visit(browser: Browser, server: LiveServer, request: pytest.FixtureRequest) -> Iterator[Visit]:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    seen = Visit(page, server, name)

    def on_console(message: ConsoleMessage) -> None:
        # Chromium logs every 4xx answer as an error; those the tests check on the page instead.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            seen.errors.append(message.text)

    page.on("request", lambda r: seen.requests.append(r.url))
    page.on("console", on_console)
    page.on("pageerror", lambda e: seen.errors.append(str(e)))
    try:
        yield seen
    finally:
        context.close()
    foreign = [u for u in seen.requests if not u.startswith((server.base_url + "/", "blob:", "data:"))]
    assert not foreign, f"requests to anyone but the server: {foreign}"
    assert not seen.errors, seen.errors
