"""The web console in a real browser (Debian's Chromium driven by Playwright, never a
downloaded browser) against the whole stack: sign in, a streamed answer that appears piece by
piece while the balance drops by its cost, a 402 and a 429 rendered as messages, an image job
followed live into the gallery and deleted from it, and the admin view's charts showing the
numbers the analytics API returns (a plain user neither sees it nor gets the data).

Screenshots (desktop and phone viewports) go to web-results/ (gitignored)."""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import webbuild
from playwright.async_api import Browser, Page, async_playwright, expect
from pymongo import AsyncMongoClient

from devstack import Stack, free_port
from tests.e2e.conftest import running_stack
from tests.simulator.fixtures import RunningSimulator
from tests.support.clerk import FakeClerk
from tests.support.clerk_frontend import ClerkFrontend, publishable_key
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

DIST = str(webbuild.WEB / "dist")
RESULTS = webbuild.ROOT / "web-results"
CHROMIUM = Path("/usr/bin/chromium")
# Headless, and quiet: this machine's network is closed, and Chromium's own background calls
# (updates, sync, metrics) would only fail.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--metrics-recording-only",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 30_000

# Records every text the answer shows, as the page changes it.
OBSERVE_ANSWER = """() => {
  window.__answers = [];
  const log = document.getElementById("conversation");
  new MutationObserver(() => {
    const answer = log.querySelector(".message.assistant:last-child .answer");
    const text = answer ? answer.textContent : "";
    const seen = window.__answers;
    if (text && seen[seen.length - 1] !== text) seen.push(text);
  }).observe(log, { subtree: true, childList: true, characterData: true });
}"""


@pytest.fixture(scope="session")
def web_dist() -> Path:
    """The console as `make web` builds it (only when older than its sources)."""
    webbuild.ensure_built()
    return Path(DIST)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium; installed with apt when missing (a test tool's own browser download
    would be refused by this machine's closed network)."""
    if not CHROMIUM.exists():
        apt = shutil.which("apt-get")
        assert apt, f"{CHROMIUM} is missing and there is no apt-get to install Debian's chromium"
        install = [apt, "install", "-y", "--no-install-recommends", "chromium"]
        if subprocess.run(install, capture_output=True, check=False).returncode != 0:
            subprocess.run([apt, "update"], capture_output=True, check=True)  # a fresh machine's lists may be stale
            subprocess.run(install, capture_output=True, check=True)
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def open_console(browser: Browser, stack: Stack, problems: list[str]) -> Page:
    page = await browser.new_page(viewport=DESKTOP)
    # A CSP violation or an uncaught error shows up here: the page must run under its own policy.
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    await page.goto(stack.gateway_url + "/")
    return page


async def sign_in(page: Page, email: str, role: str = "user") -> None:
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Role").select_option(role)
    await page.get_by_label("Email").press("Enter")  # the keyboard alone signs in
    await expect(page.locator("#balance")).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("#model option").first).to_be_attached(timeout=WAIT_MS)


async def send(page: Page, text: str, *, keyboard: bool = False) -> None:
    await page.get_by_label("Message", exact=True).fill(text)
    if keyboard:
        await page.get_by_label("Message", exact=True).press("Control+Enter")
    else:
        await page.get_by_role("button", name="Send").click()


# The elements reaching past the right edge of the screen, to say what overflows.
WIDER_THAN_SCREEN = """() => [...document.querySelectorAll("body *")]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .slice(0, 5).map(e => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`)"""


async def screenshots(page: Page, name: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    await page.set_viewport_size(DESKTOP)
    await page.screenshot(path=RESULTS / f"{name}-desktop.png", full_page=True)
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=RESULTS / f"{name}-phone.png", full_page=True)
    # Usable on a phone: nothing wider than the screen.
    wide = await page.evaluate(WIDER_THAN_SCREEN)
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], wide
    await page.set_viewport_size(DESKTOP)


async def server_credits(stack: Stack, page: Page) -> dict[str, int]:
    token = await page.evaluate("sessionStorage.getItem('aisaas.token')")
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=10) as http:
        response = await http.get("/v1/credits", headers={"Authorization": f"Bearer {token}"})
    return response.json()


async def server_balance(stack: Stack, page: Page) -> int:
    return int((await server_credits(stack, page))["available"])


@pytest.mark.provider_simulator
@pytest.mark.stack_env(SIGNUP_CREDITS="1000", WEB_DIST_DIR=DIST)
async def test_a_streamed_answer_appears_piece_by_piece_and_the_balance_drops_by_its_cost(
    stack: Stack, simulator: RunningSimulator, web_dist: Path, browser: Browser
) -> None:
    for provider in ("gemini", "openai"):
        simulator.sim.add_fault(provider, stream_delay_ms=150)
    problems: list[str] = []
    page = await open_console(browser, stack, problems)
    await expect(page.get_by_label("Email")).to_be_focused()
    await screenshots(page, "signin")
    await sign_in(page, "web-stream@example.com")
    balance = page.locator("#balance")
    await expect(balance).to_have_attribute("data-available", "1000", timeout=WAIT_MS)

    await page.evaluate(OBSERVE_ANSWER)
    await send(page, "how do answers stream into a browser tab")
    await expect(page.get_by_role("button", name="Stop")).to_be_enabled(timeout=WAIT_MS)
    meta = page.locator(".message.assistant .meta")
    await expect(meta).to_have_attribute("data-credits", re.compile(r"^[0-9]+$"), timeout=WAIT_MS)

    final = await page.locator(".message.assistant .answer").inner_text()
    seen: list[str] = await page.evaluate("window.__answers")
    assert "how do answers stream into a browser tab" in final
    assert len(seen) >= 4, f"the answer did not arrive piece by piece: {seen}"
    assert all(len(a) < len(b) and b.startswith(a) for a, b in itertools.pairwise(seen)), seen
    assert seen[0] != final.strip()  # the first text shown was a part, not the whole

    cost = int(await meta.get_attribute("data-credits") or "")
    assert cost > 0
    await expect(balance).to_have_attribute("data-available", str(1000 - cost), timeout=WAIT_MS)
    assert await server_balance(stack, page) == 1000 - cost
    await page.get_by_role("link", name="Credits").click()
    charged = page.locator('#credit-history tr[data-kind="commit"]').first
    await expect(charged).to_contain_text("Charged", timeout=WAIT_MS)
    await expect(page.locator('#credit-history tr[data-reason="signup"]')).to_contain_text("welcome credits")
    await screenshots(page, "credits")
    await page.get_by_role("link", name="Chat").click()
    await expect(page.get_by_role("button", name="Stop")).to_be_disabled()
    await screenshots(page, "chat-streamed")
    assert problems == []


@pytest.mark.provider_simulator
@pytest.mark.stack_env(SIGNUP_CREDITS="1000", WEB_DIST_DIR=DIST)
async def test_the_stop_button_ends_the_stream_and_keeps_what_arrived(
    stack: Stack, simulator: RunningSimulator, web_dist: Path, browser: Browser
) -> None:
    for provider in ("gemini", "openai"):
        simulator.sim.add_fault(provider, stream_delay_ms=500)
    problems: list[str] = []
    page = await open_console(browser, stack, problems)
    await sign_in(page, "web-stop@example.com")
    words = " ".join(f"word{i}" for i in range(40))
    await send(page, words)
    answer = page.locator(".message.assistant .answer")
    await expect(answer).not_to_be_empty(timeout=WAIT_MS)
    await page.get_by_role("button", name="Stop").click()

    meta = page.locator(".message.assistant .meta")
    await expect(meta).to_have_text(re.compile(r"^Stopped\."), timeout=WAIT_MS)
    await expect(page.get_by_role("button", name="Stop")).to_be_disabled()
    await expect(page.get_by_role("button", name="Send")).to_be_enabled()
    shown = await answer.inner_text()
    assert "word39" not in shown  # cut short, not the whole answer
    settled = await wait_until(lambda: server_credits(stack, page), lambda c: c["reserved"] == 0, within=30)
    assert settled["available"] < 1000  # what arrived is paid for
    header = page.locator("#balance")  # and the header catches up once nothing is held
    await expect(header).to_have_attribute("data-available", str(settled["available"]), timeout=WAIT_MS)
    await expect(header).not_to_contain_text("held", timeout=WAIT_MS)
    await screenshots(page, "chat-stopped")
    assert problems == []


@pytest.mark.stack_env(SIGNUP_CREDITS="1", WEB_DIST_DIR=DIST)
async def test_when_credits_run_out_a_402_renders_as_a_message_and_the_question_is_kept(
    stack: Stack, web_dist: Path, browser: Browser
) -> None:
    problems: list[str] = []
    page = await open_console(browser, stack, problems)
    await sign_in(page, "web-broke@example.com")
    balance = page.locator("#balance")
    await expect(balance).to_have_attribute("data-available", "1", timeout=WAIT_MS)
    await send(page, "hi")  # the last credit pays for this one
    await expect(page.locator(".message.assistant .meta")).to_have_attribute("data-credits", "1", timeout=WAIT_MS)
    await expect(balance).to_have_attribute("data-available", "0", timeout=WAIT_MS)

    await send(page, "an answer I cannot pay for")
    alert = page.get_by_role("alert").filter(has_text="enough credits")
    await expect(alert).to_have_text(re.compile(r"^You do not have enough credits for this request\."), timeout=WAIT_MS)
    await expect(page.get_by_label("Message", exact=True)).to_have_value("an answer I cannot pay for")
    await expect(page.locator(".message")).to_have_count(2)  # the refused question is not left in the log
    assert await server_balance(stack, page) == 0
    await screenshots(page, "chat-402")
    assert [p for p in problems if "402" not in p] == []  # the browser logs the failed request itself


@pytest.mark.stack_env(SIGNUP_CREDITS="1000", WEB_DIST_DIR=DIST, RATE_LIMITS=json.dumps({"chat": {"user": "1/minute"}}))
async def test_a_429_renders_with_the_time_to_wait(stack: Stack, web_dist: Path, browser: Browser) -> None:
    problems: list[str] = []
    page = await open_console(browser, stack, problems)
    await sign_in(page, "web-hasty@example.com")
    await send(page, "first")
    await expect(page.locator(".message.assistant .meta")).to_have_attribute(
        "data-credits", re.compile(r"^[0-9]+$"), timeout=WAIT_MS
    )
    await send(page, "second, too soon", keyboard=True)
    alert = page.get_by_role("alert").filter(has_text="Too many requests")
    await expect(alert).to_have_text(
        re.compile(r"^Too many requests\. Please try again in [0-9]+ seconds?\.$"), timeout=WAIT_MS
    )
    await screenshots(page, "chat-429")
    assert [p for p in problems if "429" not in p] == []


@pytest.mark.provider_simulator
@pytest.mark.stack_env(SIGNUP_CREDITS="1000", WEB_DIST_DIR=DIST, CHAT_RETRY_ATTEMPTS="1")
async def test_a_provider_outage_renders_as_a_message_and_costs_nothing(
    stack: Stack, simulator: RunningSimulator, web_dist: Path, browser: Browser
) -> None:
    for provider in ("gemini", "openai"):
        simulator.sim.add_fault(provider, status=503, times=-1)
    problems: list[str] = []
    page = await open_console(browser, stack, problems)
    await sign_in(page, "web-outage@example.com")
    await expect(page.locator("#balance")).to_have_attribute("data-available", "1000", timeout=WAIT_MS)
    await send(page, "is anyone there")
    alert = page.get_by_role("alert").filter(has_text="unavailable")
    await expect(alert).to_have_text(re.compile(r"^The AI service is unavailable right now \("), timeout=WAIT_MS)
    await expect(page.get_by_label("Message", exact=True)).to_have_value("is anyone there")
    settled = await wait_until(lambda: server_credits(stack, page), lambda c: c["reserved"] == 0, within=30)
    assert settled["available"] == 1000
    await screenshots(page, "chat-outage")
    assert [p for p in problems if " 50" not in p] == []  # the browser logs the failed request itself


# Records each state the image job shows (status, stage and progress), as the page changes it.
OBSERVE_JOB = """() => {
  window.__job = [];
  const job = document.getElementById("image-job");
  const bar = document.getElementById("image-progress");
  new MutationObserver(() => {
    const state = `${job.dataset.status}/${document.getElementById("image-stage").dataset.stage}/${bar.value}`;
    const seen = window.__job;
    if (seen[seen.length - 1] !== state) seen.push(state);
  }).observe(job, { subtree: true, attributes: true, childList: true, characterData: true });
}"""


async def server_images(stack: Stack, page: Page) -> list[dict[str, object]]:
    token = await page.evaluate("sessionStorage.getItem('aisaas.token')")
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=10) as http:
        response = await http.get("/v1/images", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    images: list[dict[str, object]] = response.json()["images"]
    return images


@pytest.mark.stack_env(SIGNUP_CREDITS="100", WEB_DIST_DIR=DIST, IMAGE_PRICE="5", LOCAL_IMAGE_LATENCY_S="2")
async def test_an_image_job_shows_progress_lands_in_the_gallery_and_deleting_it_asks_first_then_removes_it(
    stack: Stack, web_dist: Path, browser: Browser
) -> None:
    problems: list[str] = []
    page = await open_console(browser, stack, problems)
    await sign_in(page, "web-images@example.com")
    balance = page.locator("#balance")
    await expect(balance).to_have_attribute("data-available", "100", timeout=WAIT_MS)
    await page.get_by_role("link", name="Images").click()
    await expect(page.get_by_label("Image prompt")).to_be_focused()
    await expect(page.locator("#gallery-empty")).to_be_visible(timeout=WAIT_MS)

    await page.evaluate(OBSERVE_JOB)
    await page.get_by_label("Image prompt").fill("a red lighthouse at dusk")
    await page.get_by_label("Size").select_option("256x256")
    await page.get_by_role("button", name="Generate").click()
    tiles = page.locator("#gallery li")
    await expect(tiles).to_have_count(1, timeout=WAIT_MS)
    seen: list[str] = await page.evaluate("window.__job")
    assert seen[-1] == "succeeded/done/100", seen
    assert any(state.startswith(("queued/", "running/")) for state in seen[:-1]), f"no progress was shown: {seen}"
    shown = [int(state.rsplit("/", 1)[1]) for state in seen]
    assert shown == sorted(shown), f"progress went back: {seen}"
    await expect(balance).to_have_attribute("data-available", "95", timeout=WAIT_MS)

    listed = await server_images(stack, page)
    assert [image["prompt"] for image in listed] == ["a red lighthouse at dusk"]
    assert listed[0]["size"] == "256x256"
    await expect(tiles.first).to_have_attribute("data-image-id", str(listed[0]["id"]))
    picture = tiles.first.get_by_role("img", name="a red lighthouse at dusk")
    assert await picture.evaluate("img => img.complete && img.naturalWidth") == 256  # the file itself is served

    await page.get_by_role("button", name="Open a red lighthouse at dusk").click()
    viewer = page.get_by_role("dialog")
    await expect(viewer).to_be_visible()
    await expect(viewer.get_by_role("img")).to_have_attribute("src", str(listed[0]["url"]))
    await screenshots(page, "images-open")
    await page.keyboard.press("Escape")
    await expect(viewer).to_be_hidden()
    await screenshots(page, "images")

    # Deleting asks first: Cancel (or Escape) keeps the picture, and the keyboard is back on Delete.
    delete = page.get_by_role("button", name="Delete a red lighthouse at dusk")
    confirm = page.get_by_role("dialog", name="Delete this image?")
    await delete.click()
    await expect(confirm).to_be_visible()
    await expect(confirm).to_contain_text("a red lighthouse at dusk")
    await expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    await screenshots(page, "images-delete-confirm")
    await assert_accessible(page, "delete confirmation")
    await confirm.get_by_role("button", name="Cancel").click()
    await expect(confirm).to_be_hidden()
    await expect(delete).to_be_focused()
    await page.keyboard.press("Enter")  # asks again; Escape is a Cancel too
    await expect(confirm).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(confirm).to_be_hidden()
    await expect(tiles).to_have_count(1)
    assert [image["id"] for image in await server_images(stack, page)] == [listed[0]["id"]]

    await delete.click()
    await confirm.get_by_role("button", name="Delete").click()
    await expect(tiles).to_have_count(0, timeout=WAIT_MS)
    await expect(page.locator("#gallery-empty")).to_be_visible()
    assert await server_images(stack, page) == []
    assert await server_balance(stack, page) == 95  # deleting is free, and refunds nothing
    assert problems == []


async def api_as(stack: Stack, token: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=10) as http:
        return await http.get(path, headers={"Authorization": f"Bearer {token}"})


async def dev_token(stack: Stack, email: str, role: str) -> str:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=10) as http:
        response = await http.post("/v1/dev/token", json={"email": email, "role": role})
    response.raise_for_status()
    token: str = response.json()["token"]
    return token


async def chart_numbers(page: Page, table_id: str) -> dict[str, float]:
    """A chart's numbers as its table gives them to assistive technology: label -> value."""
    rows: list[list[str]] = await page.locator(f"table#{table_id} tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.querySelectorAll('[data-value]')].map(c => c.dataset.value))"
    )
    return {label: float(value) for label, value in rows}


async def table_rows(page: Page, table_id: str) -> dict[str, dict[str, str]]:
    rows: list[dict[str, str]] = await page.locator(f"table#{table_id} tbody tr").evaluate_all(
        "rows => rows.map(r => Object.fromEntries("
        "[...r.querySelectorAll('[data-key]')].map(c => [c.dataset.key, c.dataset.value])))"
    )
    return {row["key"] if "key" in row else row["id"]: row for row in rows}


@pytest.mark.provider_simulator
@pytest.mark.stack_env(SIGNUP_CREDITS="1000", WEB_DIST_DIR=DIST)
async def test_an_admin_sees_charts_with_the_numbers_the_analytics_api_returns_and_grants_credits(
    stack: Stack, simulator: RunningSimulator, web_dist: Path, browser: Browser
) -> None:
    problems: list[str] = []
    plain = await dev_token(stack, "web-granted@example.com", "user")
    assert (await api_as(stack, plain, "/v1/credits")).json()["available"] == 1000  # now a known user
    page = await open_console(browser, stack, problems)
    await sign_in(page, "web-admin@example.com", role="admin")
    await send(page, "what does a day of usage cost")
    await expect(page.locator(".message.assistant .meta")).to_have_attribute(
        "data-credits", re.compile(r"^[0-9]+$"), timeout=WAIT_MS
    )
    token = await page.evaluate("sessionStorage.getItem('aisaas.token')")

    async def usage(group_by: str) -> dict[str, object]:
        response = await api_as(stack, token, f"/v1/admin/analytics/usage?group_by={group_by}")
        assert response.status_code == 200, response.text
        report: dict[str, object] = response.json()
        return report

    await wait_until(lambda: usage("day"), lambda r: r["totals"]["requests"] >= 1, within=30)  # type: ignore[index]

    await page.get_by_role("link", name="Admin").click()
    await expect(page.get_by_role("heading", name="Admin")).to_be_visible()
    users = await table_rows(page, "users")
    granted_id = next(uid for uid, row in users.items() if row["email"] == "web-granted@example.com")
    assert users[granted_id]["role"] == "user"
    offered = page.locator(f'#user-ids option[value="{granted_id}"]')  # typed ids are completed from the list
    await expect(offered).to_have_text("web-granted@example.com")
    await page.get_by_label("User id").fill(granted_id)
    await page.get_by_label("Amount").fill("250")
    await page.get_by_label("Reason").select_option("purchase")
    async with page.expect_request("**/v1/admin/credits/grants") as sent:
        await page.get_by_label("Amount").press("Enter")  # the keyboard alone grants
    assert re.fullmatch(r"[!-~]{1,64}", (await sent.value).headers["idempotency-key"])
    await expect(page.locator("#grant-status")).to_have_text(
        "Granted 250 credits to " + granted_id + "; they now have 1250 available.", timeout=WAIT_MS
    )
    assert (await api_as(stack, plain, "/v1/credits")).json()["available"] == 1250
    flow = page.locator('table#credits-flow [data-key="value"]').first
    await expect(flow).to_have_attribute("data-value", re.compile(r"^[0-9]+$"), timeout=WAIT_MS)
    await expect(page.locator("#reports")).to_have_attribute("aria-busy", "false", timeout=WAIT_MS)

    report = await api_as(stack, token, "/v1/admin/analytics/credits")
    credits = report.json()
    assert credits["granted_by_reason"]["purchase"] == 250
    assert await chart_numbers(page, "credits-flow") == {
        "granted": credits["granted"],
        "spent": credits["spent"],
        "released": credits["released"],
    }
    assert await chart_numbers(page, "granted-by-reason") == credits["granted_by_reason"]

    day = await usage("day")
    rows = day["rows"]
    assert isinstance(rows, list) and rows
    by_day = {r["key"]: r["figures"] for r in rows}
    assert await chart_numbers(page, "requests-by-day") == {k: f["requests"] for k, f in by_day.items()}
    assert await chart_numbers(page, "tokens-by-day") == {
        k: f["prompt_tokens"] + f["completion_tokens"] for k, f in by_day.items()
    }
    assert await chart_numbers(page, "cost-by-day") == {k: f["cost_usd"] for k, f in by_day.items()}
    assert await chart_numbers(page, "cache-by-day") == {k: f["cache_hit_ratio"] for k, f in by_day.items()}
    assert sum(f["requests"] for f in by_day.values()) >= 1
    for grouping, table in (("model", "usage-by-model"), ("provider", "usage-by-provider"), ("user", "top-users")):
        expected = {r["key"]: r["figures"] for r in (await usage(grouping))["rows"]}  # type: ignore[attr-defined]
        assert expected, grouping
        shown = await table_rows(page, table)
        assert set(shown) == set(expected), grouping
        for key, figures in expected.items():
            assert float(shown[key]["requests"]) == figures["requests"]
            assert float(shown[key]["tokens"]) == figures["prompt_tokens"] + figures["completion_tokens"]
            assert float(shown[key]["cost_usd"]) == figures["cost_usd"]
            assert float(shown[key]["cache_hit_ratio"]) == figures["cache_hit_ratio"]
        assert await chart_numbers(page, f"{table}-chart") == {k: f["cost_usd"] for k, f in expected.items()}
    await screenshots(page, "admin")
    assert problems == []


@pytest.mark.stack_env(SIGNUP_CREDITS="1000", WEB_DIST_DIR=DIST)
async def test_a_plain_user_has_no_admin_view_and_the_admin_api_refuses_them(
    stack: Stack, web_dist: Path, browser: Browser
) -> None:
    problems: list[str] = []
    page = await open_console(browser, stack, problems)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    await sign_in(page, "web-plain@example.com")
    await expect(page.get_by_role("link", name="Images")).to_be_visible()
    await expect(page.locator("#who")).to_have_text("web-plain@example.com", timeout=WAIT_MS)  # from GET /v1/me
    assert any(url.endswith("/v1/me") for url in asked)
    assert not [url for url in asked if "/v1/admin/" in url]  # the console asks who, not whether admin calls fail
    await page.goto(stack.gateway_url + "/#admin")  # asked for by address: the first section instead
    await expect(page.get_by_role("link", name="Chat")).to_have_attribute("aria-current", "page", timeout=WAIT_MS)
    await expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    assert await page.locator("#admin-title, #reports, #grant-user").count() == 0

    token = await page.evaluate("sessionStorage.getItem('aisaas.token')")
    for path in ("/v1/admin/analytics/usage", "/v1/admin/analytics/credits", "/v1/admin/users"):
        refused = await api_as(stack, token, path)
        assert refused.status_code == 403, path
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["request_id"]
    assert problems == []


async def dev_token_as_stored(stack: Stack, email: str) -> str:
    """A development token asserting no role: the users collection decides, as for a Clerk token."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=10) as http:
        response = await http.post("/v1/dev/token", json={"email": email, "role": None})
    response.raise_for_status()
    token: str = response.json()["token"]
    return token


async def open_console_as(browser: Browser, stack: Stack, token: str, problems: list[str]) -> Page:
    """The console in a new tab already signed in with `token` (kept per tab, as sign-in keeps it)."""
    page = await open_console(browser, stack, problems)
    await page.evaluate("token => sessionStorage.setItem('aisaas.token', token)", token)
    await page.reload()
    await expect(page.locator("#balance")).to_be_visible(timeout=WAIT_MS)
    return page


@pytest.mark.stack_env(SIGNUP_CREDITS="1000", WEB_DIST_DIR=DIST)
async def test_an_admin_changes_a_users_role_and_the_api_and_that_users_next_request_see_it(
    stack: Stack, web_dist: Path, browser: Browser
) -> None:
    problems: list[str] = []
    member = await dev_token_as_stored(stack, "web-promoted@example.com")
    assert (await api_as(stack, member, "/v1/admin/users")).status_code == 403  # first sight: a user
    page = await open_console(browser, stack, problems)
    await sign_in(page, "web-roles@example.com", role="admin")
    await page.get_by_role("link", name="Admin").click()
    role = page.get_by_label("Role of web-promoted@example.com", exact=True)
    await expect(role).to_have_value("user", timeout=WAIT_MS)

    # The keyboard alone: choose the role, Tab to Save, Enter.
    await role.focus()
    await role.select_option("admin")
    await page.keyboard.press("Tab")
    save = page.get_by_role("button", name="Save role of web-promoted@example.com")
    await expect(save).to_be_focused()
    async with page.expect_response(re.compile(r"/v1/admin/users/[^/]+/role$")) as answered:
        await page.keyboard.press("Enter")
    assert (await answered.value).status == 200
    await expect(page.locator("#users-status")).to_have_text("web-promoted@example.com is now admin.")
    admin_token = await page.evaluate("sessionStorage.getItem('aisaas.token')")
    listed = (await api_as(stack, admin_token, "/v1/admin/users?role=admin")).json()["users"]
    assert "web-promoted@example.com" in [u["email"] for u in listed]
    assert (await api_as(stack, member, "/v1/admin/users")).status_code == 200  # their next request is an admin's
    await screenshots(page, "admin-roles")

    # The promoted user's own console shows them the admin section; demoted meanwhile, their
    # next change is refused, and the API's problem is shown with its request id.
    theirs = await open_console_as(browser, stack, member, problems)
    await expect(theirs.locator("#who")).to_have_text("web-promoted@example.com", timeout=WAIT_MS)
    await theirs.get_by_role("link", name="Admin").click()
    await expect(theirs.get_by_label("Role of web-roles@example.com", exact=True)).to_be_visible(timeout=WAIT_MS)
    await page.get_by_label("Role of web-promoted@example.com", exact=True).select_option("subscriber")
    await page.get_by_role("button", name="Save role of web-promoted@example.com").click()
    await expect(page.locator("#users-status")).to_have_text("web-promoted@example.com is now subscriber.")
    await theirs.get_by_label("Role of web-roles@example.com", exact=True).select_option("user")
    await theirs.get_by_role("button", name="Save role of web-roles@example.com").click()
    await expect(theirs.locator("#users-error")).to_have_text(
        re.compile(r"^Your account is not allowed to do this\. \(request id [A-Za-z0-9._:-]+\)$"), timeout=WAIT_MS
    )
    assert (await api_as(stack, member, "/v1/admin/users")).status_code == 403
    assert [p for p in problems if "403" not in p] == []  # the browser logs the refused request itself


AXE = webbuild.WEB / "node_modules" / "axe-core" / "axe.min.js"
# axe-core's WCAG 2 A and AA rules (contrast among them) over the whole page.
AXE_RUN = """() => axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] }).then(
  r => r.violations.map(v => `${v.id}: ${v.nodes.map(n => n.target.join(" ")).join(", ")}`))"""
# Form controls with no accessible name from a label or aria-label(ledby).
UNLABELLED = """() => [...document.querySelectorAll("input, select, textarea")]
  .filter(e => !e.labels.length && !e.getAttribute("aria-label") && !e.getAttribute("aria-labelledby"))
  .map(e => e.id || e.name || e.outerHTML)"""
# Marks each control the keyboard should reach (visible, enabled; only an open modal's while
# one is open, since the page behind it is inert) and names them.
MARK_REACHABLE = """() => {
  document.querySelectorAll("[data-kb]").forEach(e => delete e.dataset.kb);
  const all = [...(document.querySelector("dialog[open]") ?? document).querySelectorAll(
    "a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled])")]
    .filter(e => e.getClientRects().length && !e.closest(".sr-only, dialog:not([open])"));
  all.forEach((e, i) => e.dataset.kb = String(i));
  return all.map(e => e.id || e.getAttribute("aria-label") || e.textContent.trim());
}"""
# The focused control: its mark, and whether focus is drawn around it.
FOCUSED = """() => {
  const e = document.activeElement;
  const style = getComputedStyle(e);
  return [e.dataset.kb ?? null, style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2];
}"""


async def assert_accessible(page: Page, view: str) -> None:
    """axe-core finds nothing (on a phone's screen and a desktop's), every control has a label,
    and Tab alone reaches every control with a visible focus ring."""
    await page.evaluate(AXE.read_text())  # from node_modules, nothing from the network
    for viewport in (PHONE, DESKTOP):
        await page.set_viewport_size(viewport)
        violations = await page.evaluate(AXE_RUN)
        assert violations == [], f"{view} at {viewport}: {violations}"
    assert await page.evaluate(UNLABELLED) == [], view
    controls: list[str] = await page.evaluate(MARK_REACHABLE)
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    reached: set[int] = set()
    for _ in range(len(controls) + 10):
        await page.keyboard.press("Tab")
        mark, ring = await page.evaluate(FOCUSED)
        if mark is not None:
            assert ring, f"{view}: no visible focus on {controls[int(mark)]}"
            reached.add(int(mark))
    missed = [name for i, name in enumerate(controls) if i not in reached]
    assert missed == [], f"{view}: the keyboard does not reach {missed}"


@pytest.mark.stack_env(SIGNUP_CREDITS="1000", WEB_DIST_DIR=DIST)  # offline providers: the local chat and drawing
async def test_every_view_passes_axe_has_labelled_controls_and_is_reachable_by_keyboard(
    stack: Stack, web_dist: Path, browser: Browser
) -> None:
    problems: list[str] = []
    page = await open_console(browser, stack, problems)
    await expect(page.get_by_label("Email")).to_be_focused()
    await assert_accessible(page, "sign-in")
    await sign_in(page, "web-a11y@example.com", role="admin")
    await send(page, "a short answer for the record", keyboard=True)
    await expect(page.locator(".message.assistant .meta")).to_have_attribute(
        "data-credits", re.compile(r"^[0-9]+$"), timeout=WAIT_MS
    )
    await assert_accessible(page, "chat")
    await screenshots(page, "chat")

    # Sections open from the keyboard too: focus a tab, Enter, and the keyboard lands in it.
    await page.locator("#to-images").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Image prompt")).to_be_focused()
    await page.keyboard.type("a lighthouse drawn for the accessibility check")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Generate")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#gallery li")).to_have_count(1, timeout=WAIT_MS)
    await assert_accessible(page, "images")
    await page.locator("#gallery button.open").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("dialog")).to_be_visible()
    await assert_accessible(page, "image viewer")
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("dialog")).to_be_hidden()

    for section in ("credits", "admin"):
        await page.locator(f"#to-{section}").focus()
        await page.keyboard.press("Enter")
        await expect(page.locator(f"#to-{section}")).to_have_attribute("aria-current", "page")
        if section == "admin":
            await expect(page.locator("#reports")).to_have_attribute("aria-busy", "false", timeout=WAIT_MS)
            await expect(page.locator("table#users tbody tr")).not_to_have_count(0, timeout=WAIT_MS)
        await assert_accessible(page, section)
    assert problems == []


@pytest.mark.stack_env(SIGNUP_CREDITS="1000", WEB_DIST_DIR=DIST, IMAGE_PRICE="5")
async def test_the_gallery_lists_newest_first_and_shows_older_images_a_page_at_a_time(
    stack: Stack, web_dist: Path, browser: Browser
) -> None:
    problems: list[str] = []
    page = await open_console(browser, stack, problems)
    await sign_in(page, "web-gallery@example.com")
    token = await page.evaluate("sessionStorage.getItem('aisaas.token')")
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as http:
        for n in range(14):  # more than the console's page of 12
            made = await http.post(
                "/v1/images?wait=30",
                json={"prompt": f"picture number {n}", "size": "256x256"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert made.status_code == 200, made.text
        listed = await http.get("/v1/images?limit=100", headers={"Authorization": f"Bearer {token}"})
    newest_first = [image["id"] for image in listed.json()["images"]]
    assert len(newest_first) == 14

    await page.get_by_role("link", name="Images").click()
    tiles = page.locator("#gallery li")
    await expect(tiles).to_have_count(12, timeout=WAIT_MS)
    older = page.get_by_role("button", name="Show older images")
    await expect(older).to_be_visible()
    async with page.expect_request(re.compile(r"/v1/images\?limit=12&cursor=")) as asked:
        await older.click()
    assert (await asked.value).url.split("cursor=")[1]  # the API's cursor, passed back
    await expect(tiles).to_have_count(14, timeout=WAIT_MS)
    await expect(older).to_be_hidden()
    shown = await tiles.evaluate_all("items => items.map(i => i.dataset.imageId)")
    assert shown == newest_first
    assert problems == []


CLERK_USER, CLERK_PASSWORD = "web-clerk@example.com", "correct horse battery staple"


@pytest.fixture
def clerk_frontend() -> Iterator[ClerkFrontend]:
    """Clerk's Frontend API stand-in on a local port, knowing one user with a password."""
    fapi = ClerkFrontend(FakeClerk())
    fapi.add_user(CLERK_USER, CLERK_PASSWORD)
    with fapi.serve():
        yield fapi


@pytest.fixture
def clerk_stack(
    clerk_frontend: ClerkFrontend, mongodb_url: str, amqp_url: str, redis_url: str, tmp_path: Path
) -> Iterator[Stack]:
    """The whole system with Clerk on: the console signs in through clerk-js against the stand-in,
    and the gateway verifies its session tokens (the stand-in's JWKS, this origin as `azp`)."""
    port = free_port()
    env = {
        "SIGNUP_CREDITS": "1000",
        "WEB_DIST_DIR": DIST,
        "CLERK_ISSUER": clerk_frontend.clerk.issuer,
        "CLERK_JWKS_URL": clerk_frontend.jwks_url,
        "CLERK_AUTHORIZED_PARTIES": f"http://127.0.0.1:{port}",
        "CLERK_PUBLISHABLE_KEY": publishable_key(),
        "CLERK_PROXY_URL": clerk_frontend.url,
    }
    with running_stack(
        env, mongodb_url=mongodb_url, amqp_url=amqp_url, redis_url=redis_url, data=tmp_path / "data", gateway_port=port
    ) as stack:
        yield stack


def tampered(token: str) -> str:
    """The token with another user's id in its claims and its signature kept."""
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "user_someone_else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{signature}"


async def seed_admin(mongodb_url: str, stack: Stack, user_id: str) -> None:
    """An admin as the users collection would hold one (with Clerk on, no token can assert it)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        now = datetime.now(UTC)
        doc = {"clerkUserId": user_id, "userEmail": "", "role": "admin", "metadata": {}, "createdAt": now}
        await client[f"e2e_{stack.namespace}"]["users"].insert_one({"_id": user_id, **doc, "updatedAt": now})
    finally:
        await client.close()


async def put_as(stack: Stack, token: str, path: str, body: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=10) as http:
        return await http.put(path, json=body, headers={"Authorization": f"Bearer {token}"})


async def test_clerk_sign_in_in_the_browser_chat_with_its_token_and_a_tampered_token_is_refused(
    clerk_stack: Stack, clerk_frontend: ClerkFrontend, mongodb_url: str, web_dist: Path, browser: Browser
) -> None:
    stack, fapi = clerk_stack, clerk_frontend
    problems: list[str] = []
    asked: list[str] = []
    page = await browser.new_page(viewport=DESKTOP)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: asked.append(r.url))
    served = await page.goto(stack.gateway_url + "/")
    assert served is not None
    policy = served.headers["content-security-policy"]
    assert f"connect-src 'self' {fapi.url}; worker-src 'self' blob:;" in policy and "script-src 'self';" in policy

    password = page.get_by_label("Password")
    await expect(password).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_label("Email")).to_be_focused()
    await expect(page.get_by_label("Role")).to_have_count(0)  # no development sign-in with Clerk on
    await screenshots(page, "signin-clerk")
    await assert_accessible(page, "Clerk sign-in")
    await page.get_by_label("Email").fill(CLERK_USER)
    await password.fill("not the password")
    await password.press("Enter")
    await expect(page.locator("#signin-error")).to_have_text("Password is incorrect.", timeout=WAIT_MS)

    await password.fill(CLERK_PASSWORD)
    await password.press("Enter")  # the keyboard alone signs in
    await expect(page.locator("#balance")).to_have_attribute("data-available", "1000", timeout=WAIT_MS)
    await expect(page.locator("#who")).to_have_text(CLERK_USER, timeout=WAIT_MS)
    user = fapi.users[CLERK_USER]
    assert "POST /v1/client/sign_ins" in fapi.requests and fapi.tokens_issued
    await expect(page.locator("#balance")).to_be_visible()

    async with page.expect_request("**/v1/chat") as sent:
        await send(page, "hello from a Clerk session")
    meta = page.locator(".message.assistant .meta")
    await expect(meta).to_have_attribute("data-credits", re.compile(r"^[0-9]+$"), timeout=WAIT_MS)
    bearer = (await sent.value).headers["authorization"].removeprefix("Bearer ")
    assert bearer in fapi.tokens_issued  # the session token clerk-js got from the Frontend API
    me = await api_as(stack, bearer, "/v1/me")
    assert me.json() == {"id": user.id, "email": CLERK_USER, "role": "user"}
    await screenshots(page, "chat-clerk")

    await page.reload()  # the session outlives the page: clerk-js finds it again through the Frontend API
    await expect(page.locator("#who")).to_have_text(CLERK_USER, timeout=WAIT_MS)
    await expect(page.get_by_role("link", name="Admin")).to_have_count(0)

    # A Clerk token names no role: the users collection does, so an admin's change shows on the next request.
    await seed_admin(mongodb_url, stack, "user_clerk_admin")
    boss = fapi.clerk.token("user_clerk_admin", azp=stack.gateway_url)
    promoted = await put_as(stack, boss, f"/v1/admin/users/{user.id}/role", {"role": "admin"})
    assert promoted.status_code == 200, promoted.text
    await page.reload()
    await expect(page.get_by_role("link", name="Admin")).to_be_visible(timeout=WAIT_MS)
    assert (await api_as(stack, bearer, "/v1/me")).json()["role"] == "admin"

    refused = await api_as(stack, tampered(bearer), "/v1/me")
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["request_id"]
    stranger = fapi.clerk.token("user_stranger", role="admin", azp=stack.gateway_url)  # a role claim is not a role
    assert (await api_as(stack, stranger, "/v1/admin/users")).status_code == 403
    other_site = fapi.clerk.token(user.id, azp="https://elsewhere.example")
    assert (await api_as(stack, other_site, "/v1/me")).status_code == 401

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("Password")).to_be_visible(timeout=WAIT_MS)
    assert not [s for s in fapi.clients.values() if any(x.status == "active" for x in s.sessions)]
    await page.reload()  # signed out for good: the reloaded page asks again
    await expect(page.get_by_label("Password")).to_be_visible(timeout=WAIT_MS)

    # Everything the page fetched came from the gateway or the Frontend API (and clerk-js's timer
    # worker from a blob it made itself): no CDN, no other host.
    here = (stack.gateway_url + "/", fapi.url + "/", f"blob:{stack.gateway_url}/")
    elsewhere = [url for url in asked if not url.startswith(here)]
    assert elsewhere == []
    assert fapi.unknown == []
    assert [p for p in problems if "422" not in p] == []  # the browser logs the refused password itself
