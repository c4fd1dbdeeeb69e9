"""The page of ``sciwm serve`` in a real headless chromium: campaigns, status, plots, asking."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

try:  # the `browser` extra; without it the browser fixture fails and says how to install it
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - collected without selenium
    pass

from tests.integration.serve.conftest import EMPTY, NAME, TOKEN

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _wait(driver, condition, timeout: float = 30):
    # the page re-renders parts of itself as answers arrive: an element found a moment
    # before may have been replaced
    return WebDriverWait(
        driver, timeout, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition)


def _open(driver, url: str, name: str) -> None:
    driver.get(url + "/")
    item = _wait(driver, EC.element_to_be_clickable((By.CSS_SELECTOR, f'li[data-name="{name}"]')))
    item.click()
    _wait(driver, EC.presence_of_element_located((By.ID, "status-table")))


def _ask(driver, candidate: dict) -> None:
    for key, value in candidate.items():
        field = driver.find_element(By.ID, f"param-{key}")
        if field.tag_name == "select":
            driver.execute_script("arguments[0].value = arguments[1]", field, str(value))
        else:
            field.clear()
            field.send_keys(str(value))
    driver.find_element(By.ID, "ask-button").click()


def test_campaigns_status_plots_and_experiments(server, browser) -> None:
    _open(browser, server.url, NAME)
    names = [
        li.get_attribute("data-name")
        for li in browser.find_elements(By.CSS_SELECTOR, "#campaigns li")
    ]
    assert names == sorted([NAME, EMPTY])
    status = browser.find_element(By.ID, "status-table").text
    assert "6 (6 completed)" in status and "gp (fit" in status and "left" in status
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#plots img")) == 2)
    for img in browser.find_elements(By.CSS_SELECTOR, "#plots img"):
        _wait(
            browser,
            lambda d, img=img: d.execute_script("return arguments[0].naturalWidth", img) > 300,
        )
    rows = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#experiments-table tr"))
    assert len(rows) == 7  # a header and 6 experiments
    out = (
        Path(os.environ.get("SCIWM_PAGE_SHOTS", "")) if os.environ.get("SCIWM_PAGE_SHOTS") else None
    )
    if out:
        browser.save_screenshot(str(out / "page_status.png"))


def test_the_form_shows_the_world_models_answer(server, browser) -> None:
    grid = [{"x": x / 4, "y": y / 4, "kind": k} for x in range(5) for y in range(5) for k in "ab"]
    status, body = server.request("POST", f"/api/campaigns/{NAME}/predict", {"candidates": grid})
    assert status == 200
    by_flag = {}
    for cand, pred in zip(grid, body["predictions"], strict=True):
        by_flag.setdefault(pred["extrapolating"], cand)
    assert by_flag, "no prediction came back"
    asked = {}  # what the page will get: the same one-candidate question
    for cand in by_flag.values():
        one = server.request("POST", f"/api/campaigns/{NAME}/predict", {"candidates": [cand]})
        pred = one[1]["predictions"][0]
        asked[pred["extrapolating"]] = (cand, pred)
    _open(browser, server.url, NAME)
    for flag, (cand, pred) in sorted(asked.items()):
        _ask(browser, cand)
        _wait(browser, EC.visibility_of_element_located((By.ID, "answer-table")))
        _wait(
            browser,
            lambda d, flag=flag: (
                d.find_element(By.ID, "answer-extrapolating").get_attribute("data-extrapolating")
                == str(flag).lower()
            ),
        )
        table = browser.find_element(By.ID, "answer-table")
        f_row = table.find_element(By.CSS_SELECTOR, 'tr[data-quantity="f"]')
        mean = float(f_row.find_element(By.CLASS_NAME, "mean").text)
        assert mean == pytest.approx(pred["outcomes"]["f"]["mean"], rel=1e-3, abs=1e-4)
        lo, hi = (
            float(s)
            for s in f_row.find_element(By.CLASS_NAME, "interval").text.strip("[]").split(",")
        )
        assert lo == pytest.approx(pred["outcomes"]["f"]["lower"], rel=1e-3, abs=1e-4)
        assert hi == pytest.approx(pred["outcomes"]["f"]["upper"], rel=1e-3, abs=1e-4)
        cost_row = table.find_element(By.CSS_SELECTOR, 'tr[data-quantity="cost (s)"]')
        cost = float(cost_row.find_element(By.CLASS_NAME, "mean").text)
        assert cost == pytest.approx(pred["cost"]["mean"], rel=1e-3)
        text = browser.find_element(By.ID, "answer-extrapolating").text
        assert ("Outside the world model's data" in text) is flag
        assert "90% interval" in table.text
    if os.environ.get("SCIWM_PAGE_SHOTS"):
        browser.save_screenshot(str(Path(os.environ["SCIWM_PAGE_SHOTS"]) / "page_answer.png"))


def test_bad_values_and_an_unfitted_campaign_show_the_services_message(server, browser) -> None:
    _open(browser, server.url, NAME)
    _ask(browser, {"x": 2, "y": 0.5, "kind": "a"})
    error = _wait(browser, EC.visibility_of_element_located((By.ID, "error")))
    _wait(browser, lambda d: "out of range" in d.find_element(By.ID, "error").text)
    assert (
        "parameter 'x'" in error.text and not browser.find_element(By.ID, "answer").is_displayed()
    )
    _open(browser, server.url, EMPTY)
    empty_status = browser.find_element(By.ID, "status-table").text
    assert "experiments 0 ()" in empty_status and "none logged yet" in empty_status
    _ask(browser, {"x": 0.5, "y": 0.5, "kind": "a"})
    _wait(browser, lambda d: "no fitted world model yet" in d.find_element(By.ID, "error").text)


def test_a_service_with_a_token_asks_for_it(token_server, browser) -> None:
    assert token_server.request("GET", "/api/campaigns")[0] == 401
    browser.get(token_server.url + "/")
    browser.execute_script("sessionStorage.clear()")
    browser.get(token_server.url + "/")
    box = _wait(browser, EC.visibility_of_element_located((By.ID, "token-box")))
    assert "token" in browser.find_element(By.ID, "error").text
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "token-save").click()
    _wait(browser, EC.element_to_be_clickable((By.CSS_SELECTOR, f'li[data-name="{NAME}"]'))).click()
    _wait(browser, EC.presence_of_element_located((By.ID, "status-table")))
    assert not box.is_displayed()
    status, body = token_server.request("GET", "/api/campaigns", token=TOKEN)
    assert status == 200 and NAME in body["campaigns"]
    assert TOKEN not in token_server.log()
