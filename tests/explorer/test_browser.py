"""The explorer in a real browser (Playwright driving Debian's headless Chromium) against a
real chain with a settled event (real oracle process, real nodes), served by `gridflex
explorer` as a child process: each page loads, a reader follows the links from a request
to a device to its verification, and every figure shown is checked against the chain.
Screenshots go to `test-artifacts/explorer/`."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from explorer_event import SettledEvent
from playwright.sync_api import Browser, Page, sync_playwright
from support.chain import wait_for
from support.explorer_process import ExplorerServer, explorer_process

from gridflex.chain.anvil import AnvilProcess
from gridflex.verify import read_posted_report

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "explorer"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed with apt-get when missing."""
    if not Path(CHROMIUM).exists():
        apt = shutil.which("apt-get")
        if apt is None:
            pytest.fail(f"{CHROMIUM} is missing and apt-get is not available to install it")
        try:
            if subprocess.run([apt, "install", "-y", "chromium"], timeout=900).returncode:
                subprocess.run([apt, "update"], check=True, timeout=900)  # stale package lists
                subprocess.run([apt, "install", "-y", "chromium"], check=True, timeout=900)
        except (OSError, subprocess.SubprocessError) as error:
            pytest.fail(f"{CHROMIUM} is missing and `apt-get install -y chromium` failed: {error}")
        if not Path(CHROMIUM).exists():
            pytest.fail(f"`apt-get install -y chromium` did not provide {CHROMIUM}")
    return CHROMIUM


@pytest.fixture(scope="module")
def explorer(
    event: SettledEvent, anvil: AnvilProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ExplorerServer]:
    data_dir = tmp_path_factory.mktemp("explorer")
    with explorer_process(anvil.url, event.deployments_dir, data_dir, [event.oracle.url]) as server:

        def records_fetched() -> bool:
            body = httpx.get(f"{server.url}/api/requests/{event.request_id}", timeout=5).json()
            return bool(body["device_results"])

        wait_for(records_fetched, "the oracle's device records in the explorer", timeout=60)
        yield server


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    yield context.new_page()
    context.close()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _base_units(page: Page, selector: str) -> int:
    return int(page.locator(f"{selector} .amount").first.get_attribute("data-base-units") or "x")


def test_overview_totals_match_the_chain(
    page: Page, explorer: ExplorerServer, event: SettledEvent
) -> None:
    page.goto(explorer.url + "/")
    assert page.locator("#device-count").inner_text() == str(len(event.device_ids))
    assert page.locator("#request-count").inner_text() == "1"
    paid = sum(event.protocol.claimable(event.token, owner) for owner in event.owners)
    assert _base_units(page, "td.payouts") == paid
    assert page.locator("svg.chart").count() == 4
    _shot(page, "overview")

    page.get_by_role("link", name="Devices", exact=True).first.click()
    page.wait_for_url("**/devices")
    assert page.locator("#devices tbody tr").count() == len(event.device_ids)
    for device_id in event.device_ids:
        capacity = event.protocol.device(device_id).capacity_w
        row = page.locator("#devices tbody tr", has=page.locator(f"a[href='/devices/{device_id}']"))
        assert f"{capacity / 1000:.1f}" in row.inner_text()
    _shot(page, "devices")


def test_request_to_device_to_verification(
    page: Page, explorer: ExplorerServer, event: SettledEvent
) -> None:
    protocol = event.protocol
    state = protocol.request(event.request_id)
    posted = read_posted_report(protocol, event.request_id)
    treasury = protocol.market.functions.treasury().call()

    page.goto(explorer.url + "/")
    page.get_by_role("link", name="Requests", exact=True).first.click()
    page.wait_for_url("**/requests")
    assert page.locator("#requests tbody tr").count() == 1
    _shot(page, "requests")
    page.get_by_role("link", name=f"#{event.request_id}", exact=True).click()
    page.wait_for_url(f"**/requests/{event.request_id}")
    assert page.locator("#request-status").inner_text() == "settled"
    assert _base_units(page, "#clearing-price") == state.clearing_price
    assert _base_units(page, "#escrow") == state.escrow
    assert _base_units(page, "#payouts") == sum(
        protocol.claimable(event.token, owner) for owner in event.owners
    )
    assert _base_units(page, "#refund") == protocol.claimable(event.token, event.operator)
    assert _base_units(page, "#fees") == protocol.claimable(event.token, treasury)
    awarded = [
        int(cell.get_attribute("data-w") or "x") for cell in page.locator("td.awarded").all()
    ]
    assert awarded == protocol.awarded_w(event.request_id)
    assert page.locator("code.devices-root").first.inner_text() == "0x" + posted.devices_root.hex()
    assert (
        page.locator("code.readings-root").first.inner_text() == "0x" + posted.readings_root.hex()
    )
    assert "Merit order" in page.locator("figure.chart-box").first.inner_text()
    _shot(page, "request")

    rows = page.locator("#device-results tbody tr").all()
    delivered = {  # column 6: delivered energy, exact Wh in data-wh
        int(row.locator("a.device-link").inner_text().lstrip("#")): int(
            row.locator("td:nth-child(6) .energy").get_attribute("data-wh") or "x"
        )
        for row in rows
    }
    assert delivered and set(delivered) <= set(event.device_ids)
    device_id = max(delivered, key=lambda d: delivered[d])  # the simulation varies by hour
    page.locator(f"#device-results a.device-link[href='/devices/{device_id}']").click()
    page.wait_for_url(f"**/devices/{device_id}")
    device = protocol.device(device_id)
    assert int(page.locator("#capacity").get_attribute("data-w") or "x") == device.capacity_w
    assert page.locator("#owner a").get_attribute("title") == device.owner
    event_section = page.locator(f"section.event[data-request='{event.request_id}']")
    assert event_section.locator("svg.chart path.line").count() == 2  # baseline and metered
    if delivered[device_id] > 0:
        assert event_section.locator("svg.chart rect.shade").count() > 0  # delivered, shaded
    _shot(page, "device")

    event_section.locator("a.verify-link").click()
    page.wait_for_url(f"**/requests/{event.request_id}/devices/{device_id}/verify")
    assert page.locator("#verdict").inner_text() == "VERIFIED"
    roots = [r.inner_text() for r in page.locator("code.onchain-root").all()]
    assert roots == ["0x" + posted.devices_root.hex(), "0x" + posted.readings_root.hex()]
    assert page.locator("#readings tr.bad").count() == 0
    assert page.locator("#readings tr.ok").count() > 0
    _shot(page, "verify")


def test_account_page_matches_staking(
    page: Page, explorer: ExplorerServer, event: SettledEvent
) -> None:
    owner = event.owners[0]
    page.goto(f"{explorer.url}/accounts/{owner}")
    staked, locked, *_ = event.protocol.staking.functions.accountOf(owner).call()
    assert _base_units(page, "#staked") == staked
    assert _base_units(page, "#locked") == locked
    assert _base_units(page, "dd.payout-total") == event.protocol.claimable(event.token, owner)
    _shot(page, "account")


def test_settlements_csv_and_api_docs(explorer: ExplorerServer, event: SettledEvent) -> None:
    csv_text = httpx.get(f"{explorer.url}/api/settlements.csv", timeout=10).text
    rows = csv_text.strip().splitlines()
    assert len(rows) - 1 == sum(1 for w in event.protocol.awarded_w(event.request_id) if w)
    assert httpx.get(f"{explorer.url}/openapi.json", timeout=10).json()["paths"]
