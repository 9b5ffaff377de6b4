"""The live repository page (docs/events.md, "Live pages"): a real headless Chromium
opens a repository's index.html from the bucket, which lists the recent events and
follows the event stream; an upload then shows up in the page's package list without
a reload. The page is opened from another origin than the API (127.0.0.1 vs
localhost), as on AWS, where the bucket and the API have different hosts.

A screenshot of the updated page is kept in $CAIRN_ARTIFACTS (default
target/e2e-artifacts)."""

import json
import os
import pathlib
import shutil
import time
import urllib.parse

import pytest

from conftest import ROOT, curl, upload
from debs import make_deb, run_id

REPO = "live/3.0/ubuntu/noble"
SUBJECT = f"repository:{REPO}"
ARTIFACTS = pathlib.Path(os.environ.get("CAIRN_ARTIFACTS", ROOT / "target/e2e-artifacts"))
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Debian's chromium and chromium-driver are not installed (tests/run.sh installs them)")


def published(stack, after: str, filename: str, timeout=90) -> str:
    """Waits for the publication that adds `filename`; returns the cursor after it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, body = curl(f"{stack.api}/v1/events?subject={SUBJECT}&after={after}")
        assert status == 200, body
        page = json.loads(body)
        for event in page["events"]:
            if event["type"] == "repository.published" and filename in event["data"]["added"]:
                return str(event["seq"])
        after = page["next"]
        time.sleep(0.3)
    raise AssertionError(f"{filename} not published within {timeout}s")


def upload_deb(stack, user, tmp_path, name) -> tuple:
    """Uploads a package called `name`; returns its name and file name."""
    deb = tmp_path / f"{name}_1.0_all.deb"
    deb.write_bytes(make_deb(name, "1.0"))
    status, body = upload(stack, REPO, [(deb.name, deb)], user=user)
    assert status == 201, body
    return name, deb.name


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Without the background-networking flags Chromium keeps trying hosts that this
    # machine's closed network refuses.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--window-size=1100,1400", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, what, check, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: check(d))
    except Exception as e:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "live-page-failure.png"))
        logs = driver.get_log("browser")
        raise AssertionError(f"{what} not seen within {timeout}s; browser log: {logs}") from e


def text_of(driver, element_id) -> str:
    return driver.execute_script(
        "var e = document.getElementById(arguments[0]); return e ? e.textContent : '';",
        element_id)


def test_the_repository_page_shows_a_new_package_without_a_reload(stack, user, tmp_path,
                                                                  browser):
    status, body = curl(f"{stack.api}/v1/events?subject={SUBJECT}&last=1")
    assert status == 200, body
    start = json.loads(body)["next"]
    first, first_file = upload_deb(stack, user, tmp_path, f"cairn-live-a-{run_id()}")
    after_first = published(stack, start, first_file)

    status, body = curl(f"{stack.api}/{REPO}")
    assert status == 200, body
    page_url = json.loads(body)["page"]
    # Another origin than the API's: the stream is read across origins.
    parts = urllib.parse.urlsplit(page_url)
    assert parts.hostname == "localhost", page_url
    page_url = parts._replace(netloc=f"127.0.0.1:{parts.port}").geturl()

    browser.get(page_url)
    assert first in text_of(browser, "packages")
    wait_for(browser, "the live status",
             lambda d: text_of(d, "live-status").startswith("Live"))
    # The recent events came first: the first package's publication is listed.
    wait_for(browser, "the first publication in the recent events",
             lambda d: first_file in text_of(d, "events"))
    browser.execute_script("window.cairnSamePage = true;")

    second, second_file = upload_deb(stack, user, tmp_path, f"cairn-live-b-{run_id()}")
    published(stack, after_first, second_file)
    wait_for(browser, "the second package in the package list",
             lambda d: second in text_of(d, "packages"))
    assert browser.execute_script("return window.cairnSamePage === true;"), \
        "the page was reloaded instead of updated"
    events = browser.execute_script(
        "return Array.from(document.querySelectorAll('#events li'))"
        ".map(function (li) { return [li.dataset.type, li.textContent]; });")
    stored = [text for kind, text in events if kind == "package.stored" and second_file in text]
    assert len(stored) == 1, events
    assert events[0][0] == "repository.published", "newest first, the publication on top"
    seqs = browser.execute_script(
        "return Array.from(document.querySelectorAll('#events li'))"
        ".map(function (li) { return Number(li.dataset.seq); });")
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs), \
        f"no event shown twice or out of order: {seqs}"

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "live-page.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    severe = [entry for entry in browser.get_log("browser")
              if entry["level"] == "SEVERE" and "favicon" not in entry["message"]]
    assert not severe, severe
