"""The dashboard driven in headless Chromium: start training, save a named checkpoint, see it listed.

Needs Debian's chromium and chromium-driver (`make test` installs them when it runs as root; see
the Makefile's browser-deps) and selenium; without them the test is skipped saying which is missing.
"""

from __future__ import annotations

import shutil
import threading

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="headless Chromium not installed: `apt-get install chromium chromium-driver` (make test does it as root)",
)

QUICK = '{"max_grids": 200, "epochs": 50, "batches_per_epoch": 20, "batch_size": 16, "hidden_dim": 32, "latent_dim": 32, "val_grids": 50}'


@pytest.fixture
def server(tmp_path):
    from werkzeug.serving import make_server

    from arc_comm.server import create_app

    app = create_app(tmp_path / "checkpoints")
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", tmp_path / "checkpoints"
    httpd.shutdown()


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (requirements-dev.txt has it)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def test_dashboard_starts_saves_and_lists(server, browser):
    import torch
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, checkpoints = server
    wait = WebDriverWait(browser, 60, poll_frequency=0.2)
    browser.get(url + "/")
    assert browser.find_element(By.ID, "mode").text == "idle"

    box = browser.find_element(By.ID, "config")
    box.clear()
    box.send_keys(QUICK)
    browser.find_element(By.ID, "start").click()
    wait.until(lambda d: d.find_element(By.ID, "mode").text == "training" and int(d.find_element(By.ID, "batch").text) > 0)

    browser.find_element(By.ID, "name").send_keys("from_the_browser")
    browser.find_element(By.ID, "save").click()
    wait.until(lambda d: "from_the_browser" in d.find_element(By.ID, "message").text)
    wait.until(lambda d: "from_the_browser.pth" in d.find_element(By.ID, "checkpoints").text)

    # saving the same name again is refused on the page, and the first file is kept
    browser.find_element(By.ID, "save").click()
    wait.until(lambda d: "exists" in d.find_element(By.ID, "message").text)
    assert "error" in browser.find_element(By.ID, "message").get_attribute("class")

    # the examples panel shows grids and the sender's messages
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#examples .grid")) > 0)
    assert "→" in browser.find_element(By.ID, "examples").text

    browser.find_element(By.ID, "stop").click()
    wait.until(lambda d: d.find_element(By.ID, "mode").text in ("stopped", "finished"))

    saved = torch.load(checkpoints / "from_the_browser.pth", weights_only=True)
    assert saved["epoch"] >= 1 and saved["batch"] >= 1
    assert saved["config"]["max_grids"] == 200  # the config typed on the page reached the run


def test_dashboard_reports_a_bad_config(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = server
    browser.get(url + "/")
    box = browser.find_element(By.ID, "config")
    box.clear()
    box.send_keys('{"vocab_sise": 25}')
    browser.find_element(By.ID, "start").click()
    WebDriverWait(browser, 20).until(lambda d: "vocab_sise" in d.find_element(By.ID, "message").text)
    assert browser.find_element(By.ID, "mode").text == "idle"
