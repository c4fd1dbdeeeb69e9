"""A real ``sciwm serve`` on loopback and Debian's headless chromium driven by selenium."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sciwm.bench.serve_process import ServiceProcess
from tests.sciwm.serve.campaigns import open_empty_campaign, run_small_campaign

INSTALL_HINT = "run `bash .ci/services/install-chromium.sh` (as root) to install chromium"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
NAME, EMPTY = "page-camp", "page-empty"
TOKEN = "page-test-token-0123456789abcdef"


@pytest.fixture(scope="package")
def store_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("page")
    mp = pytest.MonkeyPatch()
    mp.chdir(folder)
    uri = run_small_campaign(folder, NAME)
    open_empty_campaign(folder, uri, EMPTY)
    yield uri
    mp.undo()


@pytest.fixture(scope="package")
def server(store_uri: str) -> Iterator[ServiceProcess]:
    proc = ServiceProcess(store_uri)
    proc.start()
    yield proc
    proc.close()


@pytest.fixture(scope="package")
def token_server(store_uri: str) -> Iterator[ServiceProcess]:
    proc = ServiceProcess(store_uri, token=TOKEN)
    proc.start()
    yield proc
    proc.close()


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    """A headless chromium (fresh profile, no network beyond loopback), through chromedriver."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail(f"chromium or chromedriver is missing: {INSTALL_HINT}", pytrace=False)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is missing: pip install -e '.[browser]' (make setup does)")

    profile = tempfile.mkdtemp(prefix="sciwm-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1200",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
