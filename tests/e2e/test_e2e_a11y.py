"""Every page in Chromium, for a class on a projector and for anyone who cannot see colour or use a mouse.

- axe-core (tests/e2e/axe, installed by ``npm ci --prefix tests/e2e/axe``; .ci/run does it) on Lesson, Chat,
  Token inspector, Compare and Sessions, empty and filled, in the light and the dark theme: no serious or
  critical violation.
- At 800, 1280 and 1440 px nothing is clipped: the page does not scroll sideways, the payload timeline fits
  its column, metric labels and buttons are not cut; below 1,000 px the sidebar starts collapsed.
- A reload, and the session's link in a new tab, keep the budget and strategy "Play the example" set.
- The chat input is a few Tab presses away (a skip link), however many turns are drawn.

Pages are reached through the sidebar's page list, as a reader does. Under CI=true a missing browser or a
missing axe-core fails the run instead of skipping it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.app_server import ROOT
from tests.support.browser import open_app, session_in_url, wait_idle
from tests.support.ci import require

pytestmark = pytest.mark.e2e

AXE = ROOT / "tests" / "e2e" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
PAGES = ("Lesson", "Chat", "Token inspector", "Compare providers", "Sessions")
WIDTHS = (800, 1280, 1440)
SERIOUS = ("serious", "critical")


@pytest.fixture(scope="module")
def axe_source() -> str:
    require(AXE.exists(), f"axe-core is not installed at {AXE}: run `npm ci --prefix tests/e2e/axe`")
    return AXE.read_text()


@pytest.fixture(scope="module")
def played(browser, app) -> str:
    """A session filled by "Play the example" (offline model, budget 200 from the fact on): its id."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    open_app(page, app)
    page.get_by_role("button", name="Play the example").click()
    page.get_by_text("Example finished").wait_for(timeout=240_000)
    wait_idle(page)
    sid = session_in_url(page)
    context.close()
    return sid


def new_page(browser, *, width: int = 1280, scheme: str = "light") -> Any:
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    page.set_default_timeout(60_000)
    return page


def settle(page) -> None:
    """Idle, and every chart drawn (Vega draws after the script has finished)."""
    wait_idle(page)
    charts = "[...document.querySelectorAll(\"[data-testid='stVegaLiteChart']\")]"
    page.wait_for_function(f"{charts}.every(c => c.querySelector('svg, canvas'))", timeout=30_000)
    page.wait_for_timeout(300)


def go(page, name: str) -> None:
    """Open a page through the sidebar's list (a direct /inspector URL is not how readers arrive)."""
    nav = page.get_by_test_id("stSidebarNav")
    if not nav.is_visible():
        page.get_by_test_id("stExpandSidebarButton").click()
    nav.get_by_text(name, exact=True).click()
    settle(page)


def serious_violations(page, axe_source: str) -> list[str]:
    page.add_script_tag(content=axe_source)
    found = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ['violations']});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' :: '
                                                + n.failureSummary.replace(/\\s+/g, ' '))}));
    }""")
    return [f"{v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in found
            if v["impact"] in SERIOUS]


# -- axe-core ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_axe_violation_on_any_page_empty_or_filled(browser, app, played, axe_source, scheme):
    problems: list[str] = []
    for filled in (False, True):
        page = new_page(browser, scheme=scheme)
        open_app(page, app, f"?session={played}" if filled else "")
        settle(page)
        background = page.evaluate(
            "getComputedStyle(document.querySelector(\"[data-testid='stApp']\")).backgroundColor")
        assert (background == "rgb(255, 255, 255)") == (scheme == "light"), f"{scheme} theme not applied: {background}"
        for name in PAGES:
            go(page, name)
            state = f"{name}, {'filled' if filled else 'empty'}, {scheme}"
            problems += [f"[{state}] {v}" for v in serious_violations(page, axe_source)]
            if filled and name == "Chat":  # a message's raw text and token view, with its metrics
                page.get_by_role("button", name="Raw text & tokens").first.click()
                settle(page)
                problems += [f"[{state}, token view] {v}" for v in serious_violations(page, axe_source)]
            if name == "Compare providers":  # the results: summary table, replies, bodies
                page.get_by_label("New message").fill("Which reply is shorter?")
                page.get_by_role("button", name="Send to all").click()
                page.get_by_text("How the requests differ").wait_for(timeout=60_000)
                settle(page)
                problems += [f"[{state}, results] {v}" for v in serious_violations(page, axe_source)]
        page.context.close()
    assert not problems, "\n".join(problems)


# -- views that fit ------------------------------------------------------------------------------------------

CLIPPED = """() => {
    const out = [];
    const wider = (e, slack = 1) => e.scrollWidth > e.clientWidth + slack;
    const main = document.querySelector("[data-testid='stMain']");
    if (wider(main)) out.push(`the page scrolls sideways: ${main.scrollWidth} > ${main.clientWidth}`);
    document.querySelectorAll("[data-testid='stVegaLiteChart']").forEach((chart, n) => {
        const svg = chart.querySelector('svg');
        const drawn = svg ? svg.getBoundingClientRect().width : 0;
        const room = chart.getBoundingClientRect().width;
        if (wider(chart) || drawn > room + 1)
            out.push(`chart ${n} is ${Math.round(drawn)} px in ${Math.round(room)} px`);
    });
    const cut = (selector, what) => document.querySelectorAll(selector).forEach(e => {
        if (e.offsetParent && wider(e)) out.push(`${what} cut: "${e.textContent.trim()}"`);
    });
    cut("[data-testid='stMetricLabel'] p", 'metric label');
    cut("[data-testid='stMain'] button p", 'button');
    return out;
}"""


def sidebar_open(page) -> bool:
    return page.get_by_test_id("stSidebar").bounding_box()["width"] > 50


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_at_common_widths(browser, app, played, width):
    page = new_page(browser, width=width)
    open_app(page, app, f"?session={played}")
    settle(page)
    assert sidebar_open(page) == (width >= 1000), f"sidebar {'open' if sidebar_open(page) else 'collapsed'} at {width}"
    problems: list[str] = []
    here = "Chat"  # the page the link opened
    for name in PAGES:
        if name != here:
            go(page, name)
            here = name
        if width < 1000:
            assert not sidebar_open(page), f"{name}: the sidebar stayed open at {width} px after the page was picked"
        problems += [f"[{name}] {p}" for p in page.evaluate(CLIPPED)]
        if name == "Chat":
            page.get_by_role("button", name="Raw text & tokens").first.click()
            settle(page)
            problems += [f"[Chat, token view] {p}" for p in page.evaluate(CLIPPED)]
    page.context.close()
    assert not problems, "\n".join(problems)


def test_the_timeline_has_a_title_a_description_and_a_summary_in_words(browser, app, played):
    page = new_page(browser)
    open_app(page, app, f"?session={played}")
    settle(page)
    chart = page.get_by_test_id("stVegaLiteChart").first
    assert chart.locator("svg text", has_text="Tokens per request").count()  # the chart's own title
    assert chart.get_attribute("role") == "graphics-document"
    label = chart.get_attribute("aria-label") or ""
    assert "requests drawn" in label and "tokens" in label, label  # the description: what a screen reader hears
    words = page.get_by_test_id("stMarkdownContainer").filter(has_text="In words:").first.inner_text()
    assert "tokens" in words and "not sent" in words, words
    page.context.close()


# -- settings remembered --------------------------------------------------------------------------------------


def budget_and_strategy(page) -> tuple[str, str]:
    sidebar = page.get_by_test_id("stSidebar")
    if not sidebar_open(page):
        page.get_by_test_id("stExpandSidebarButton").click()
    budget = sidebar.get_by_role("slider").first.get_attribute("aria-valuetext") or ""
    strategy = sidebar.get_by_role("combobox", name="Strategy")
    return budget.replace(",", ""), strategy.input_value() or strategy.inner_text()


def test_a_reload_and_the_link_keep_the_budget_and_strategy_the_example_set(browser, app, played):
    page = new_page(browser)
    open_app(page, app, f"?session={played}")  # the session's link in a new tab
    budget, strategy = budget_and_strategy(page)
    assert budget == "200" and "(turns)" in strategy, (budget, strategy)
    page.reload()
    wait_idle(page)
    budget, strategy = budget_and_strategy(page)
    assert budget == "200" and "(turns)" in strategy, (budget, strategy)
    assert not page.get_by_text("Changed since this session's last turn").count()
    page.context.close()


# -- keyboard ------------------------------------------------------------------------------------------------


def test_the_chat_input_is_a_few_tab_presses_away_in_a_filled_chat(browser, app, played):
    page = new_page(browser)
    open_app(page, app, f"?session={played}")
    settle(page)
    for _ in range(12):  # bounded: a few stops, not the 78 a filled chat used to need
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('hl-skip-link')"):
            break
    else:
        raise AssertionError("no skip link within 12 Tab presses")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the message box"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.dataset.testid") == "stChatInputTextArea"
    page.context.close()
