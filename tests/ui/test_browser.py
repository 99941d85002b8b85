"""The web UI in a real browser: Playwright driving Debian's headless Chromium against a live `spacehub serve` with
the local runtime (real builds, real apps, the Space proxy). Screenshots of the main pages go to
docs/screenshots/ (the committed ones are from such a run)."""

from __future__ import annotations

import hashlib
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.conftest import Server, start_server, stop_server
from tests.e2e.conftest import EXAMPLES, runtime_env, stop_apps, uv_cache  # noqa: F401 (uv_cache is a fixture)
from tests.ui.conftest import PASSWORD, SCREENSHOTS, create_web_user, scan

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
SECRET = "s3cr3t-value-that-must-never-render-7d1f"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, uv_cache: Path) -> Iterator[Server]:  # noqa: F811
    server = start_server(tmp_path_factory.mktemp("ui") / "data", runtime_env(uv_cache))
    for name in ("carol", "dave"):
        create_web_user(server, name)
        server.tokens[name] = server.cli("tokens", "create", name).strip().splitlines()[-1]
    yield server
    stop_server(server)
    stop_apps(server.data_dir)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run scripts/install-system-deps")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def signed_in(browser: Any, hub: Server, name: str, base: str | None = None, **options: Any) -> Any:
    """A fresh browser context (its own cookies; ``options`` for ``new_context``) signed in as ``name`` at ``base``
    (``hub.url`` by default), through the sign-in form."""
    base = base or hub.url
    page = browser.new_context(viewport={"width": 1280, "height": 860}, **options).new_page()
    page.goto(f"{base}/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/spaces")
    assert page.get_by_role("button", name="Sign out").is_visible()
    return page


def shot(page: Any, name: str, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def upload(hub: Server, owner: str, repo_id: str, folder: Path, private: bool = False, sdk: str = "static") -> None:
    api = HfApi(endpoint=hub.url, token=hub.tokens[owner])
    api.create_repo(repo_id, repo_type="space", space_sdk=sdk, private=private)
    api.upload_folder(folder_path=folder, repo_id=repo_id, repo_type="space")


def frame_text(page: Any) -> str:
    """What the Space page's frame shows (its address and text), for a failure's message."""
    try:
        return (
            page.evaluate("document.getElementById('app-frame').src")
            + ": "
            + page.frame_locator("#app-frame").locator("body").inner_text(timeout=5_000)[:1_500]
        )
    except PlaywrightError as exc:
        return f"(unreadable: {exc})"


def log_tail(hub: Server, lines: int = 60) -> str:
    return "\n".join(hub.log.read_text(errors="replace").splitlines()[-lines:])


def test_sign_in_then_the_tokens_page_makes_a_token_the_python_client_uses(browser: Any, hub: Server) -> None:
    page = browser.new_page()
    page.goto(f"{hub.url}/login")
    shot(page, "login")
    page.get_by_label("User name").fill("carol")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    assert "Invalid user name or password" in page.get_by_role("alert").inner_text()
    page.close()
    page = signed_in(browser, hub, "carol")
    page.goto(f"{hub.url}/settings/tokens")
    page.get_by_label("Name", exact=True).fill("from-the-browser")
    page.get_by_label("Role").select_option("write")
    page.get_by_role("button", name="Create token").click()
    value = page.locator("#new-token").input_value()
    assert value.startswith("hf_")
    assert HfApi(endpoint=hub.url, token=value).whoami()["name"] == "carol"
    page.reload()  # shown once: the page shows it no more (a reload re-posts nothing: it was a POST answer)
    page.goto(f"{hub.url}/settings/tokens")
    assert value not in page.content() and "from-the-browser" in page.content()
    shot(page, "tokens")


def test_explore_shows_a_card_and_a_static_space_runs_in_its_page(browser: Any, hub: Server, tmp_path: Path) -> None:
    upload(hub, "carol", "carol/hello-static", EXAMPLES / "static")
    page = signed_in(browser, hub, "carol")
    page.goto(f"{hub.url}/spaces")
    card = page.locator('[data-space="carol/hello-static"]')
    card.wait_for()
    shot(page, "spaces")
    card.click()
    page.wait_for_url(f"{hub.url}/spaces/carol/hello-static")
    page.wait_for_function("document.getElementById('stage').dataset.stage === 'RUNNING'", timeout=60_000)
    frame = page.frame_locator("#app-frame")
    frame.locator("body").wait_for()
    assert frame.locator("body").inner_text(timeout=30_000).strip()


def test_a_gradio_space_made_on_the_new_space_page_goes_from_building_to_running_in_its_page(
    browser: Any, hub: Server
) -> None:
    page = signed_in(browser, hub, "carol")
    page.goto(f"{hub.url}/new-space")
    page.get_by_label("Space name").fill("greeter")
    page.get_by_label("gradio").check()
    shot(page, "new-space")
    page.get_by_role("button", name="Create Space").click()
    page.wait_for_url(f"{hub.url}/spaces/carol/greeter")
    page.evaluate("""() => { window.__stages = [document.getElementById('stage').dataset.stage];
        new MutationObserver(() => window.__stages.push(document.getElementById('stage').dataset.stage))
            .observe(document.getElementById('stage'), {attributes: true}); }""")
    page.wait_for_function("document.getElementById('stage').dataset.stage === 'RUNNING'", timeout=300_000)
    stages = page.evaluate("window.__stages")
    assert stages[0] in ("BUILDING", "APP_STARTING", "RUNNING_BUILDING"), stages
    assert stages[-1] == "RUNNING", stages  # changed without a reload: the observer (and its list) survived
    frame = page.frame_locator("#app-frame")
    try:
        frame.get_by_label("Name").fill("Ada", timeout=120_000)
    except PlaywrightTimeout:
        raise AssertionError(
            f"no app in the frame; stages {page.evaluate('window.__stages')}; the frame shows "
            f"{frame_text(page)!r}; the server logged:\n{log_tail(hub)}"
        ) from None
    frame.get_by_role("button", name="Submit").click()
    greeting = frame.get_by_label("Greeting")
    for _ in range(100):
        if greeting.input_value() == "Hello Ada!":
            break
        page.wait_for_timeout(200)
    assert greeting.input_value() == "Hello Ada!"
    page.get_by_role("button", name="Build").click()  # the build log streamed into the panel
    page.wait_for_function("document.getElementById('logs').textContent.length > 0", timeout=30_000)
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "space")


def test_a_secret_added_in_settings_is_never_rendered_and_unfit_hardware_says_why(browser: Any, hub: Server) -> None:
    page = signed_in(browser, hub, "carol")
    api = HfApi(endpoint=hub.url, token=hub.tokens["carol"])
    api.create_repo("carol/configured", repo_type="space", space_sdk="static")
    page.goto(f"{hub.url}/spaces/carol/configured/settings")
    page.get_by_label("Name", exact=True).first.fill("API_KEY")
    page.locator("#secret-value").fill(SECRET)
    page.get_by_role("button", name="Add secret").click()
    page.wait_for_url("**/settings?done=*")
    assert set(api.get_space_secrets("carol/configured")) == {"API_KEY"}
    assert page.locator("#secrets").inner_text().split()[0] == "API_KEY"
    unfit = page.locator("#flavor option", has_text="not on this machine").first.get_attribute("value")
    page.locator("#flavor").select_option(unfit)
    page.get_by_role("button", name="Request hardware").click()
    reason = page.locator("#settings-error").inner_text()
    assert reason and api.get_space_runtime("carol/configured").requested_hardware == "cpu-basic"
    seen = []
    for path in ("/spaces", "/carol", "/spaces/carol/configured", "/spaces/carol/configured/settings"):
        page.goto(f"{hub.url}{path}")
        seen.append(page.content())
    shot(page, "settings")
    scan(seen, SECRET)


ENV_APP = """import hashlib, os, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

value = os.environ.get("API_KEY")
STATE = "set" if value else "not set"
DIGEST = hashlib.sha256(value.encode()).hexdigest()[:16] if value else "-"
BOOT = uuid.uuid4().hex[:12]
print("API_KEY is " + STATE, flush=True)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("<!doctype html><title>env check</title><p id='state'>API_KEY is " + STATE + "</p>"
                "<p id='digest'>" + DIGEST + "</p><p id='boot'>" + BOOT + "</p>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "7860"))), Handler).serve_forever()
"""


def env_space(hub: Server, tmp_path: Path, repo_id: str) -> None:
    """A plain-Python Space (the gradio SDK's environment, no gradio in the app) that says whether ``API_KEY`` is
    set, the sha256 of its value (never the value) and an id of this start."""
    folder = tmp_path / repo_id.replace("/", "-")
    folder.mkdir()
    (folder / "app.py").write_text(ENV_APP)
    (folder / "README.md").write_text("---\ntitle: Env check\nemoji: 🔑\nsdk: gradio\napp_file: app.py\n---\n")
    upload(hub, "carol", repo_id, folder, sdk="gradio")


def app_text(page: Any, selector: str) -> str:
    return str(page.frame_locator("#app-frame").locator(selector).inner_text(timeout=30_000))


def test_the_space_page_charts_the_running_apps_cpu_and_memory(browser: Any, hub: Server, tmp_path: Path) -> None:
    env_space(hub, tmp_path, "carol/charted")
    page = signed_in(browser, hub, "carol")
    page.goto(f"{hub.url}/spaces/carol/charted")
    page.wait_for_function("document.getElementById('stage').dataset.stage === 'RUNNING'", timeout=300_000)
    panel = page.locator("#usage")
    # at least one real sample of the running app: its memory is above 0 and is drawn
    page.wait_for_function("Number(document.getElementById('usage').dataset.samples || 0) >= 3", timeout=30_000)
    assert panel.get_attribute("data-running") == "true"
    text = page.locator("#usage-now").inner_text()
    assert text.startswith("CPU ") and " of 2 cores · memory " in text and "of 16.0 GiB" in text, text
    assert not text.split("memory ", 1)[1].startswith("0 MiB"), text  # a real process uses memory
    points = [p.split(",") for p in page.locator("#usage-mem").get_attribute("points").split()]
    assert len(points) >= 3 and min(float(y) for _, y in points) < 50  # drawn above the baseline (58)
    page.wait_for_function("Number(document.getElementById('usage').dataset.samples) >= 20", timeout=60_000)
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "space-usage", full_page=True)
    # paused: the chart stops and says so, without a reload
    HfApi(endpoint=hub.url, token=hub.tokens["carol"]).pause_space("carol/charted")
    page.wait_for_function("document.getElementById('usage').dataset.running === 'false'", timeout=60_000)
    assert page.locator("#usage-now").inner_text() == "The app is not running: there is no usage to show."
    assert page.locator("#usage-mem").get_attribute("points") == ""


def test_a_secret_added_in_settings_restarts_the_app_with_it(browser: Any, hub: Server, tmp_path: Path) -> None:
    env_space(hub, tmp_path, "carol/env-check")
    page = signed_in(browser, hub, "carol")
    seen: list[str] = []
    page.goto(f"{hub.url}/spaces/carol/env-check")
    page.wait_for_function("document.getElementById('stage').dataset.stage === 'RUNNING'", timeout=300_000)
    assert app_text(page, "#state") == "API_KEY is not set"
    boot = app_text(page, "#boot")

    page.goto(f"{hub.url}/spaces/carol/env-check/settings")
    page.get_by_label("Name", exact=True).first.fill("API_KEY")
    page.locator("#secret-value").fill(SECRET)
    page.get_by_role("button", name="Add secret").click()
    page.wait_for_url("**/settings?done=*")
    seen.append(page.content())
    page.goto(f"{hub.url}/spaces/carol/env-check")
    # the Space restarts with the secret: a new start of the app (another boot id) sees it, through the proxy
    for _ in range(60):
        page.wait_for_function("document.getElementById('stage').dataset.stage === 'RUNNING'", timeout=120_000)
        if app_text(page, "#boot") != boot:
            break
        page.wait_for_timeout(2000)
        page.reload()
    assert app_text(page, "#boot") != boot
    assert app_text(page, "#state") == "API_KEY is set"
    assert app_text(page, "#digest") == hashlib.sha256(SECRET.encode()).hexdigest()[:16]  # the value, unseen
    page.get_by_role("button", name="Container").click()  # the run log says so too, and holds no value
    background = "el => getComputedStyle(el).backgroundColor"  # the chosen log is seen chosen, not only announced
    container, build = page.get_by_role("button", name="Container"), page.get_by_role("button", name="Build")
    assert container.get_attribute("aria-pressed") == "true" and build.get_attribute("aria-pressed") == "false"
    assert container.evaluate(background) == "rgb(17, 24, 39)" and build.evaluate(background) == "rgb(255, 255, 255)"
    page.wait_for_function("document.getElementById('logs').textContent.includes('API_KEY is set')", timeout=30_000)
    seen += [page.content(), page.frame_locator("#app-frame").locator("html").inner_html()]
    for path in ("/spaces", "/carol", "/spaces/carol/env-check/settings", "/spaces/carol/env-check/tree/main",
                 "/spaces/carol/env-check/commits/main"):  # fmt: skip
        page.goto(f"{hub.url}{path}")
        seen.append(page.content())
    scan(seen, SECRET)
    assert len(seen) == 8 and "API_KEY" in seen[0]  # the settings page lists the name, never the value


def test_a_commit_is_opened_from_the_history_and_its_diff_is_coloured(browser: Any, hub: Server) -> None:
    api = HfApi(endpoint=hub.url, token=hub.tokens["carol"])
    api.create_repo("carol/history", repo_type="space", space_sdk="static")
    api.upload_file(path_or_fileobj=b"<p>v1</p>\nsame\n", path_in_repo="index.html", repo_id="carol/history",
                    repo_type="space", commit_message="First page")  # fmt: skip
    api.upload_file(path_or_fileobj=b"<p>v2 <script>alert(1)</script></p>\nsame\n", path_in_repo="index.html",
                    repo_id="carol/history", repo_type="space", commit_message="Second page")  # fmt: skip
    page = signed_in(browser, hub, "carol")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{hub.url}/spaces/carol/history/commits/main")
    page.get_by_role("link", name="Second page").click()
    page.wait_for_url(f"{hub.url}/spaces/carol/history/commit/*")
    diff = page.get_by_role("region", name="modified: index.html")
    added, removed = diff.locator("tr.add"), diff.locator("tr.del")
    assert added.count() == 1 and removed.count() == 1
    assert added.locator("td").nth(2).inner_text() == "+<p>v2 <script>alert(1)</script></p>"  # text, not markup
    assert removed.locator("td").nth(0).inner_text() == "1" and added.locator("td").nth(1).inner_text() == "1"
    colour = "el => getComputedStyle(el).backgroundColor"
    assert added.evaluate(colour) == "rgb(230, 255, 236)" and removed.evaluate(colour) == "rgb(255, 235, 233)"
    assert not dialogs  # the author's script did not run
    page.get_by_role("link", name=api.list_repo_commits("carol/history", repo_type="space")[1].commit_id[:7]).click()
    page.wait_for_url("**/commit/*")
    assert page.locator("#commit-title").inner_text() == "First page"
    page.go_back()
    shot(page, "commit")


def test_a_private_space_renders_for_its_owner_only(browser: Any, hub: Server, tmp_path: Path) -> None:
    folder = tmp_path / "private"
    folder.mkdir()
    (folder / "index.html").write_text("<!doctype html><title>p</title><p id='m'>only for readers</p>")
    (folder / "README.md").write_text("---\ntitle: Private page\nsdk: static\nemoji: 🔒\n---\n")
    upload(hub, "carol", "carol/hidden", folder, private=True)
    owner = signed_in(browser, hub, "carol")
    owner.goto(f"{hub.url}/spaces/carol/hidden")
    owner.wait_for_function("document.getElementById('stage').dataset.stage === 'RUNNING'", timeout=60_000)
    owner.reload()  # a fresh grant for the frame, now that the Space is served
    text = owner.frame_locator("#app-frame").locator("#m").inner_text(timeout=30_000)
    assert text == "only for readers"
    src = owner.locator("#app-frame").get_attribute("src")
    assert src and "__sign=" in src
    # at its own URL too: the page's link carries a grant of its own (the frame's cookie is partitioned)
    with owner.context.expect_page() as opened:
        owner.get_by_role("link", name="Open the app at its own URL").click()
    direct = opened.value
    direct.wait_for_load_state()
    assert direct.url == src.split("?")[0] and direct.locator("#m").inner_text() == "only for readers"

    other = signed_in(browser, hub, "dave")
    r = other.goto(f"{hub.url}/spaces/carol/hidden")
    assert r is not None and r.status == 404 and "only for readers" not in other.content()
    r = other.goto(src.split("?")[0])
    assert r is not None and r.status == 404 and "only for readers" not in other.content()
    anonymous = browser.new_page()
    r = anonymous.goto(f"{hub.url}/spaces/carol/hidden")
    assert r is not None and r.status == 404
    scan([owner.content(), other.content()], SECRET)


SLOW_START = ENV_APP.replace(
    "value = os.environ", "import time\ntime.sleep(int(os.environ.get('START_DELAY', '15')))\nvalue = os.environ", 1
)


def look(page: Any, selector: str) -> dict[str, str]:
    """What the site's style sheet sets on ``selector``: the same values on a Hub page and a proxy page."""
    return dict(page.locator(selector).first.evaluate(
        """el => { const s = getComputedStyle(el);
            return {font: s.fontFamily, size: s.fontSize, weight: s.fontWeight, color: s.color,
                    background: s.backgroundColor, border: s.borderBottomColor}; }"""
    ))  # fmt: skip


def until_served(page: Any, url: str, heading: str, timeout: float = 120) -> None:
    """Open ``url`` until it is the 503 page titled ``heading`` (the runtime acts on a change a moment after the
    API has taken it: a loaded machine takes longer)."""
    deadline = time.monotonic() + timeout
    while True:
        r = page.goto(url)
        if r is not None and r.status == 503 and page.get_by_role("heading", level=1).inner_text() == heading:
            return
        assert time.monotonic() < deadline, (r.status if r else None, page.content()[:300])
        page.wait_for_timeout(500)


def test_the_proxys_waking_paused_and_error_pages_wear_the_sites_look(
    browser: Any, hub: Server, tmp_path: Path
) -> None:
    """At a Space's own address: the waking page (while the Space builds and starts) reloads itself until the app
    answers; the paused and error pages name the stage with the Space page's badge, say what happens next and lead
    to the Space's page on the Hub. Each is one self-contained document in the Hub's look."""
    host = f"http://carol-slow-start.localhost:{hub.url.rsplit(':', 1)[1]}"
    folder = tmp_path / "slow-start"
    folder.mkdir()
    (folder / "app.py").write_text(SLOW_START)  # answers 15 s after it starts: the waking page is seen for sure
    (folder / "README.md").write_text("---\ntitle: Slow start\nemoji: 🐢\nsdk: gradio\napp_file: app.py\n---\n")
    upload(hub, "carol", "carol/slow-start", folder, sdk="gradio")
    owner = signed_in(browser, hub, "carol")  # the Space page frames the waking page while it builds and starts
    owner.goto(f"{hub.url}/spaces/carol/slow-start")
    # the frame shows the page while the Space is not served ("Waking up" until the runtime has taken it up)
    waiting = re.compile(r"^(Waking up|Building|Starting) this Space…$")
    owner.frame_locator("#app-frame").get_by_role("heading", name=waiting).wait_for(timeout=60_000)
    hub_look = {sel: look(owner, sel) for sel in ("body", "header.top", "header.top .brand", "h1")}
    shot(owner, "space-starting")

    visitor = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
    requests: list[tuple[str, str]] = []
    visitor.on("request", lambda r: requests.append((r.resource_type, r.url)))
    r = visitor.goto(host + "/")
    assert r is not None and r.status == 503
    assert waiting.match(visitor.get_by_role("heading", level=1).inner_text())
    assert "reloads by itself every 2 seconds" in visitor.locator(".next").inner_text()
    assert {sel: look(visitor, sel) for sel in hub_look} == hub_look  # the Hub's look, to the pixel sizes
    shot(visitor, "proxy-waking")
    visitor.locator("#state").wait_for(timeout=300_000)  # it reloaded itself until the app answered
    assert visitor.locator("#state").inner_text() == "API_KEY is not set" and visitor.url == host + "/"
    assert {kind for kind, _ in requests} == {"document"} and {url for _, url in requests} == {host + "/"}

    api = HfApi(endpoint=hub.url, token=hub.tokens["carol"])
    api.pause_space("carol/slow-start")
    until_served(visitor, host + "/", "This Space is paused")  # once the runtime has stopped the app
    assert visitor.get_by_role("heading", level=1).inner_text() == "This Space is paused"
    assert "until its owner restarts it" in visitor.locator(".next").inner_text()
    badge = visitor.locator(".space .badge")
    assert badge.inner_text() == "paused"
    owner.goto(f"{hub.url}/spaces/carol/slow-start")
    owner.wait_for_function("document.getElementById('stage').dataset.stage === 'PAUSED'", timeout=60_000)
    assert look(visitor, ".space .badge") == look(owner, "#stage")  # the Space page's own badge
    shot(visitor, "proxy-paused")
    with visitor.context.expect_page() as opened:
        visitor.get_by_role("link", name="See this Space on SpaceHub: its status and logs").click()
    hub_page = opened.value
    hub_page.wait_for_url("**/spaces/carol/slow-start")
    assert hub_page.locator("#stage").get_attribute("data-stage") == "PAUSED"  # the Hub's page, where it says so
    # in the Space page's frame (sandboxed), the link opens the Hub in a tab of its own and the frame stays whole
    frame = owner.frame_locator("#app-frame")
    frame.get_by_role("heading", name="This Space is paused").wait_for(timeout=30_000)
    with owner.context.expect_page() as opened:
        frame.get_by_role("link", name="See this Space on SpaceHub: its status and logs").click()
    opened.value.wait_for_url("**/spaces/carol/slow-start")
    assert opened.value.get_by_role("heading", level=1).inner_text().endswith("carol / slow-start")
    assert frame.get_by_role("heading", name="This Space is paused").is_visible()

    broken = tmp_path / "no-app"
    broken.mkdir()
    (broken / "main.py").write_text("print('not the app file')\n")
    (broken / "README.md").write_text("---\ntitle: No app\nemoji: 💥\nsdk: gradio\napp_file: app.py\n---\n")
    upload(hub, "carol", "carol/no-app", broken, sdk="gradio")
    until_served(visitor, host.replace("carol-slow-start", "carol-no-app") + "/", "This Space has an error")
    assert visitor.get_by_role("heading", level=1).inner_text() == "This Space has an error"
    assert visitor.locator(".space .badge").inner_text() == "no app file"
    assert "logs on SpaceHub say what went wrong" in visitor.locator(".next").inner_text()
    assert visitor.get_by_role("link", name="See this Space on SpaceHub: its status and logs").is_visible()
    shot(visitor, "proxy-error")


def headings_until_the_app(page: Any, timeout: float = 300) -> list[str]:
    """The page's ``h1`` at each look (deduplicated in order) until the app's ``#state`` is there, without touching
    the page: it reloads by itself (a meta refresh)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while page.locator("#state").count() == 0:
        assert time.monotonic() < deadline, seen
        try:
            text = page.locator("h1").first.inner_text(timeout=1000)
        except Exception:  # between two documents: look again
            text = None
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        page.wait_for_timeout(200)
    return seen


def test_a_space_that_builds_says_so_at_its_own_url_and_then_is_the_app(
    browser: Any, hub: Server, tmp_path: Path
) -> None:
    """Opened at its own URL while it builds, a Space says "Building" with what happens next and a link to the build
    log on its page, in a browser without JavaScript; the page reloads itself through "Starting" into the app, and
    the link leads its owner to the build's lines on the Space page."""
    port = hub.url.rsplit(":", 1)[1]
    host = f"http://carol-slow-build.localhost:{port}"
    owner = signed_in(browser, hub, "carol", base=f"http://localhost:{port}")  # where the page's link leads
    plain = browser.new_context(viewport={"width": 1280, "height": 720}, java_script_enabled=False).new_page()
    folder = tmp_path / "slow-build"
    folder.mkdir()
    (folder / "app.py").write_text(SLOW_START.replace("'15'", "'10'"))  # answers 10 s after it starts
    # requirements of its own: a new environment is made (gradio and its ~70 packages installed), a build of seconds
    (folder / "requirements.txt").write_text(f"# an environment of its own: {uuid.uuid4().hex}\n")
    (folder / "README.md").write_text("---\ntitle: Slow build\nemoji: 🧱\nsdk: gradio\napp_file: app.py\n---\n")
    upload(hub, "carol", "carol/slow-build", folder, sdk="gradio")

    until_served(plain, host + "/", "Building this Space…", timeout=60)  # once the runtime has taken the commit
    assert plain.locator(".space").inner_text().split() == ["carol/slow-build", "building"]  # name and badge
    assert "once the build is done the app starts" in plain.locator(".next").inner_text()
    logs = plain.get_by_role("link", name="Follow the build in its logs on SpaceHub")
    hub_page = f"http://localhost:{port}/spaces/carol/slow-build"  # the Hub at the Space host's parent domain
    href = logs.get_attribute("href")
    assert href == hub_page + "#logs-title" and logs.get_attribute("target") == "_blank"
    shot(plain, "proxy-building")

    # without JavaScript, the page turns into the app by itself: building, then starting, then the app
    seen = ["Building this Space…", *headings_until_the_app(plain)]
    assert plain.url == host + "/" and plain.locator("#state").inner_text() == "API_KEY is not set"
    assert "Starting this Space…" in seen and set(seen) == {"Building this Space…", "Starting this Space…"}, seen
    assert HfApi(endpoint=hub.url, token=hub.tokens["carol"]).get_space_runtime("carol/slow-build").stage == "RUNNING"

    # the link, followed by the owner: the Space page at its logs, whose build log has the build's lines
    owner.goto(href)
    assert owner.get_by_role("heading", name="Logs").is_visible()
    owner.wait_for_function("document.getElementById('logs').textContent.includes('===== building')",
                            timeout=60_000)  # fmt: skip


MODEL_CARD = """---
license: mit
tags: [text-classification, tiny]
---
# Tiny classifier

A *small* model card.

```python
def predict(text):
    return "positive"
```

| split | rows |
|-------|------|
| train | 1000 |
"""


def test_a_model_is_found_in_the_models_list_and_its_card_is_readable(browser: Any, hub: Server) -> None:
    """The README card is dark text on the page (not the Space tiles' white-on-gradient `.card`), its code is
    coloured by the highlighting style sheet, and the models list (from the header) leads to it."""
    api = HfApi(endpoint=hub.url, token=hub.tokens["carol"])
    api.create_repo("carol/tiny-clf")
    api.upload_file(path_or_fileobj=MODEL_CARD.encode(), path_in_repo="README.md", repo_id="carol/tiny-clf")
    page = signed_in(browser, hub, "carol")
    page.get_by_role("link", name="Models", exact=True).click()
    page.wait_for_url(f"{hub.url}/models")
    page.get_by_role("link", name="carol/tiny-clf").click()
    page.wait_for_url(f"{hub.url}/carol/tiny-clf")
    card = page.get_by_role("article", name="Model card")
    heading = card.get_by_role("heading", name="Tiny classifier")
    style = "el => { const s = getComputedStyle(el); return [s.color, s.backgroundColor]; }"
    body_colour = page.locator("body").evaluate("el => getComputedStyle(el).color")
    assert heading.evaluate(style)[0] == body_colour == "rgb(17, 24, 39)"  # the site's text colour, on white
    assert card.evaluate(style)[1] in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
    keyword = card.locator("pre span.k", has_text="def")
    assert keyword.evaluate("el => getComputedStyle(el).color") == "rgb(0, 128, 0)"  # Pygments' keyword green
    assert card.get_by_role("cell", name="1000").is_visible()
    assert [t.inner_text() for t in page.get_by_role("list", name="Tags").get_by_role("listitem").all()] == [
        "text-classification",
        "tiny",
    ]
    shot(page, "model")


def test_a_pull_requests_page_has_a_preview_button_for_its_author_that_starts_the_preview(
    browser: Any, hub: Server, tmp_path: Path
) -> None:
    """dave opens a pull request to carol's Space; its page shows him (its author) a "Preview" button, none to
    erin (signed in, neither its author nor a writer) nor to anonymous visitors. His click (a CSRF-protected form)
    starts the preview: the page then links to its host, which serves the pull request's code once it runs."""
    from huggingface_hub import CommitOperationAdd

    upload(hub, "carol", "carol/previewed", EXAMPLES / "python-http", sdk="gradio")
    create_web_user(hub, "erin")
    dave_api = HfApi(endpoint=hub.url, token=hub.tokens["dave"])
    app = (EXAMPLES / "python-http" / "app.py").read_text().replace('"python-http-v1"', '"python-http-pr"')
    num = dave_api.create_commit("carol/previewed", [CommitOperationAdd("app.py", app.encode())],
                                 commit_message="Say pr", repo_type="space", create_pr=True).pr_num  # fmt: skip
    assert num is not None
    url = f"{hub.url}/spaces/carol/previewed/discussions/{num}"
    button = {"name": "Preview", "exact": True}

    anonymous = browser.new_page()
    anonymous.goto(f"{hub.url}/spaces/carol/previewed/discussions")
    anonymous.get_by_role("link", name=f"#{num} Say pr").click()
    anonymous.wait_for_url(url)
    assert anonymous.get_by_role("button", **button).count() == 0
    assert "No preview runs" in anonymous.locator("#preview").inner_text()
    erin = signed_in(browser, hub, "erin")
    erin.goto(url)
    assert erin.get_by_role("heading", name=f"#{num} Say pr").is_visible()
    assert erin.get_by_role("button", **button).count() == 0

    dave = signed_in(browser, hub, "dave")
    dave.goto(url)
    # another site's form, sent with dave's cookies but without the page's CSRF token, is refused and starts nothing
    cookies = {c["name"]: c["value"] for c in dave.context.cookies()}
    forged = httpx.post(f"{url}/preview", data={"csrf_token": "forged"}, cookies=cookies,
                        headers={"accept": "text/html"}, timeout=30)  # fmt: skip
    assert forged.status_code == 403 and "did not come from this site" in forged.text
    assert httpx.get(f"{hub.url}/api/spaces/carol/previewed/discussions/{num}/preview", timeout=30).status_code == 404
    dave.get_by_role("button", **button).click()
    dave.wait_for_url(url)
    link = dave.locator("#preview-url")
    preview_url = link.get_attribute("href")
    assert preview_url is not None and f"--pr-{num}." in preview_url
    deadline = time.monotonic() + 240
    while dave.locator("#preview-stage").get_attribute("data-stage") != "RUNNING":
        assert time.monotonic() < deadline, dave.locator("#preview").inner_text()
        time.sleep(1)
        dave.reload()
    assert dave.get_by_role("button", name="Preview again").is_visible()
    shot(dave, "pull-request-preview")
    dave.goto(preview_url)  # the preview's own host (*.localhost resolves to this machine)
    assert dave.locator("#marker").inner_text(timeout=30_000) == "python-http-pr"
    carol = signed_in(browser, hub, "carol")  # a writer of the Space sees the button too
    carol.goto(url)
    assert carol.get_by_role("button", name="Preview again").is_visible()
    HfApi(endpoint=hub.url, token=hub.tokens["carol"]).change_discussion_status(
        "carol/previewed", num, "closed", repo_type="space"
    )
    carol.reload()
    assert carol.get_by_role("button", name="Preview again").count() == 0  # closed: nothing to preview
    assert "No preview runs" in carol.locator("#preview").inner_text()
