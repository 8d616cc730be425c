"""The dashboard, in a real browser (Debian's Chromium through Playwright), against a gateway filled with a
generated month of traffic: every page loads, its numbers equal the admin API's answers to the same question, and
a screenshot of each is saved under the test run's output folder (TOLLGATE_SCREENSHOTS, else the test's tmp)."""
from __future__ import annotations

import os
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

import seed_ledger
from conftest import ADMIN_KEY, nonce, start_gateway

PAGES = ["/dashboard", "/dashboard/people", "/dashboard/adoption", "/dashboard/models", "/dashboard/routing", "/dashboard/requests",
         "/dashboard/deployments"]


def config(up_port: int) -> str:
    base = f"http://127.0.0.1:{up_port}/v1"
    return f"""\
ledger: {{ flush_ms: 50 }}
models:
  - {{ name: gpt-4o, provider: openai-compatible, base_url: "{base}", price: {{ input_per_mtok: "2.50", cached_input_per_mtok: "1.25", output_per_mtok: "10" }} }}
  - {{ name: gpt-4o-mini, provider: openai-compatible, base_url: "{base}", price: {{ input_per_mtok: "0.15", cached_input_per_mtok: "0.075", output_per_mtok: "0.60" }} }}
  - {{ name: claude-sonnet-4-5, provider: anthropic, base_url: "http://127.0.0.1:{up_port}", api_key: k }}
  - {{ name: local-llama, provider: openai-compatible, base_url: "{base}", price: free }}
routes:
  auto: {{ strategy: learned, strong: gpt-4o, weak: gpt-4o-mini, strong_share: 0.35 }}
"""


@pytest.fixture(scope="module")
def filled(e2e_tmp, fake):
    """A gateway with three teams, eight people (one named in CJK, one with an emoji), 30 days of traffic and a
    team budget near its cap."""
    tmp = e2e_tmp / "gw-dashboard"
    gw = start_gateway(tmp, config(fake.port))
    people = [("apps", "ana", 5, True), ("apps", "ben", 3, False), ("apps", "李明", 2, True), ("infra", "chen", 4, True),
              ("infra", "dev 🚀", 1, False), ("research", "eve", 2, True), ("research", "finn", 1, False),
              ("research", "gus", 1, False)]
    entities = []
    teams = {}
    for team, user, weight, agentic in people:
        if team not in teams:
            teams[team] = gw.admin.create_team(team)
        u = gw.admin.create_user(user, team)
        k = gw.admin.create_key(user)
        org = httpx.get(gw.url + "/admin/orgs", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()["data"][0]["id"]
        entities.append({"user": user, "user_id": u["id"], "team": team, "team_id": teams[team]["id"], "org_id": org,
                         "key_id": k["id"], "weight": weight, "agentic": agentic})
    gw.stop()
    end_ms = int(time.time() * 1000)
    totals = seed_ledger.seed(str(tmp / "tollgate.db"), entities, rows=20_000, end_ms=end_ms, days=30)
    gw = start_gateway(tmp, config(fake.port))
    admin = httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)
    # A monthly team budget 8 % above what the team has spent this month: near its cap.
    spent = Decimal(next(r["cost_usd"] for r in admin.get("/admin/spend", params={"group_by": "team", "from": month_start()}).json()["data"]
                         if r["team"] == "apps"))
    r = admin.post("/admin/budgets", json={"scope": "team", "name": "apps", "limit_usd": str((spent * Decimal("1.08")).quantize(Decimal("0.01"))),
                                           "period": "month", "soft_threshold": 0.8})
    assert r.status_code == 201, r.text
    admin.post("/admin/budgets", json={"scope": "user", "name": "ana", "limit_usd": "1500", "period": "month"})
    yield gw, admin, totals
    admin.close()
    gw.stop()


def month_start() -> str:
    t = time.gmtime()
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-01"


def thirty_days() -> tuple[str, str]:
    now = time.time()
    return time.strftime("%Y-%m-%d", time.gmtime(now - 29 * 86400)), time.strftime("%Y-%m-%d", time.gmtime(now))


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(e2e_tmp) -> Path:
    folder = Path(os.environ.get("TOLLGATE_SCREENSHOTS") or (e2e_tmp / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def signed_in(browser, gw):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(gw.url + "/dashboard")
    assert page.url.startswith(gw.url + "/dashboard/login"), page.url
    page.fill("#key", "wrong-key")
    page.click("button[type=submit]")
    assert "not the admin key" in page.inner_text(".error")
    page.fill("#key", ADMIN_KEY)
    page.click("button[type=submit]")
    page.wait_for_url(gw.url + "/dashboard")
    return page


def usd(page, selector: str) -> Decimal:
    return Decimal(page.get_attribute(selector, "data-usd"))


def test_every_page_loads_in_a_browser_and_its_numbers_match_the_admin_api(filled, browser, shots):
    gw, admin, totals = filled
    page = signed_in(browser, gw)
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["tollgate_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict", session
    start, end = thirty_days()
    query = f"?from={start}&to={end}"
    for path in PAGES:
        url = gw.url + path + ("" if path.endswith(("requests", "deployments")) else query)
        response = page.goto(url)
        assert response.status == 200, (path, response.status)
        assert page.title().endswith("· Tollgate")
        page.screenshot(path=str(shots / (path.strip("/").replace("/", "-") + ".png")), full_page=True)
    spend = lambda group, **p: {r[group]: r for r in admin.get("/admin/spend", params={"group_by": group, **p}).json()["data"]}
    window = {"from": start}

    page.goto(gw.url + "/dashboard" + query)
    all_cost = sum(Decimal(r["cost_usd"]) for r in spend("model", **window).values())
    assert usd(page, "#kpi-spend") == all_cost
    top = page.query_selector_all("#top-users tbody tr")
    users = spend("user", **window)
    assert len(top) == min(10, len(users))
    for row in top:
        name = row.query_selector(".user").inner_text()
        assert Decimal(row.query_selector(".spend").get_attribute("data-usd")) == Decimal(users[name]["cost_usd"]), name
    budget_rows = page.query_selector_all("table.budgets tbody tr")
    budgets = {b["id"]: b for b in admin.get("/admin/budgets").json()["data"]}
    assert budget_rows, "the team budget should be on the overview"
    for row in budget_rows:
        b = budgets[row.get_attribute("data-budget")]
        assert Decimal(row.query_selector(".spent").get_attribute("data-usd")) == Decimal(b["spent_usd"])

    page.goto(gw.url + "/dashboard/people" + query)
    for cell in page.query_selector_all("tr[data-user]"):
        name = cell.get_attribute("data-user")
        assert Decimal(cell.query_selector(".spend").get_attribute("data-usd")) == Decimal(users[name]["cost_usd"]), name
    assert page.query_selector("tr[data-user='李明']") and page.query_selector("tr[data-user='dev 🚀']")

    # Adoption: the same sessions and $ per active day as /admin/usage for the same days.
    page.goto(gw.url + "/dashboard/adoption" + query)
    to_exclusive = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    usage = lambda group: {r["group"]: r for r in admin.get("/admin/usage", params={"group_by": group, "from": start,
                                                                                    "to": to_exclusive}).json()["data"]}
    by_user = usage("user")
    people_rows = page.query_selector_all("#adoption-people tbody tr")
    assert {r.get_attribute("data-user") for r in people_rows} == set(by_user)
    for row in people_rows:
        want = by_user[row.get_attribute("data-user")]
        assert Decimal(row.query_selector(".per-day").get_attribute("data-usd")) == Decimal(want["cost_per_active_day_usd"])
        assert int(row.query_selector(".sessions").inner_text()) == want["sessions"]
        assert int(row.query_selector(".agentic").inner_text()) == want["agentic_sessions"]
    per_day = [Decimal(r.query_selector(".per-day").get_attribute("data-usd")) for r in people_rows]
    assert per_day == sorted(per_day, reverse=True)
    assert by_user["ana"]["agentic_sessions"] > 0 and by_user["ben"]["agentic_sessions"] == 0
    by_client = usage("client")
    assert {r.get_attribute("data-client") for r in page.query_selector_all("#adoption-clients tbody tr")} == {"claude-cli", "openai-sdk"}
    assert by_client["openai-sdk"]["agentic_sessions"] == 0
    assert page.query_selector("#adoption-weeks tr[data-team='apps']")

    page.goto(gw.url + "/dashboard/models" + query)
    models = spend("model", **window)
    rows = page.query_selector_all("#models tbody tr")
    assert {r.get_attribute("data-model") for r in rows} == set(models)
    for row in rows:
        assert Decimal(row.query_selector(".spend").get_attribute("data-usd")) == Decimal(models[row.get_attribute("data-model")]["cost_usd"])

    page.goto(gw.url + "/dashboard/routing" + query)
    savings = sum(Decimal(r["savings_usd"]) for r in spend("model", **window).values())
    assert usd(page, "#routing-savings") == savings
    assert page.query_selector("[data-route='auto']")

    # Requests: the newest rows, filtered, as the ledger has them.
    page.goto(gw.url + "/dashboard/requests?user=chen")
    rows = page.query_selector_all("#requests tbody tr[data-id]")
    assert len(rows) == 50 and all(r.query_selector("td:nth-child(2)").inner_text() == "chen" for r in rows)
    newest = [r for r in admin.get("/admin/requests", params={"limit": 500}).json()["data"] if r["user"] == "chen"]
    assert newest and [r.get_attribute("data-id") for r in rows][:len(newest[:50])] == [r["id"] for r in newest[:50]]
    page.click("#next-page")
    assert page.query_selector_all("#requests tbody tr[data-id]")
    page.close()


def test_without_a_key_or_with_a_wrong_one_the_dashboard_answers_the_login_page(filled):
    gw, _, _ = filled
    r = httpx.get(gw.url + "/dashboard/models", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/dashboard/login")
    r = httpx.post(gw.url + "/dashboard/login", data={"key": "tg-nope", "next": "https://evil.example/"}, follow_redirects=False)
    assert r.status_code == 401 and "not the admin key" in r.text and "Traceback" not in r.text
    r = httpx.post(gw.url + "/dashboard/login", data={"key": ADMIN_KEY, "next": "https://evil.example/"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"
    forged = httpx.get(gw.url + "/dashboard", cookies={"tollgate_session": "admin.99999999999999.00"}, follow_redirects=False)
    assert forged.status_code == 303
    r = httpx.get(gw.url + "/dashboard/people", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 200 and "People and teams" in r.text
    assert "http://" not in httpx.get(gw.url + "/dashboard/style.css").text  # no external asset
