"""The dashboard driven in headless Chromium: start training, save a named checkpoint, see it listed.

Needs Debian's chromium and chromium-driver (`make test` installs them when it runs as root; see
the Makefile's browser-deps) and selenium; without them the test is skipped saying which is missing.
"""

from __future__ import annotations

import os
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
def browser(tmp_path_factory):
    """Headless Chromium whose profile and temporary files (its singleton socket, which it would
    otherwise leave in /tmp as org.chromium.Chromium.*) live under pytest's temporary folder."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (requirements-dev.txt has it)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    scratch = tmp_path_factory.mktemp("chromium")
    options.add_argument(f"--user-data-dir={scratch / 'profile'}")
    service = Service(DRIVER, env={**os.environ, "TMPDIR": str(scratch)})
    driver = webdriver.Chrome(service=service, options=options)
    yield driver
    driver.quit()


CHART_TEXTS = """
const chart = document.getElementById(arguments[0]);
const texts = (selector) => [...chart.querySelectorAll(selector)].map((e) => e.textContent).filter((t) => t);
return {x_title: texts(".g-xtitle").join(" "), y_title: texts(".g-ytitle").join(" "), x_ticks: texts(".xtick text"),
        y_ticks: texts(".ytick text"), legend: texts(".legendtext")};
"""


def _chart(browser, chart_id):
    """What a plotly chart drew: axis titles, tick labels per axis, legend entries (read in one
    script: plotly redraws its SVG as the data come in)."""
    return browser.execute_script(CHART_TEXTS, chart_id)


def test_dashboard_starts_saves_and_lists(server, browser, tmp_path):
    import torch
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, checkpoints = server
    wait = WebDriverWait(browser, 90, poll_frequency=0.2)
    browser.set_window_size(1400, 1300)
    browser.get(url + "/")
    assert browser.find_element(By.ID, "mode").text == "idle"
    assert browser.execute_script("return typeof Plotly") == "object"  # the charting library, served by arc-serve itself

    box = browser.find_element(By.ID, "config")
    box.clear()
    box.send_keys(QUICK)
    browser.find_element(By.ID, "start").click()
    wait.until(lambda d: d.find_element(By.ID, "mode").text == "training" and int(d.find_element(By.ID, "batch").text) > 0)
    setup = browser.find_element(By.ID, "setup").text
    assert "selection" in setup and "2 symbols from a vocabulary of 25" in setup and "1 of 4" in setup

    browser.find_element(By.ID, "name").send_keys("from_the_browser")
    browser.find_element(By.ID, "save").click()
    wait.until(lambda d: "from_the_browser" in d.find_element(By.ID, "message").text)
    wait.until(lambda d: "from_the_browser.pth" in d.find_element(By.ID, "checkpoints").text)

    # saving the same name again is refused on the page, and the first file is kept
    browser.find_element(By.ID, "save").click()
    wait.until(lambda d: "exists" in d.find_element(By.ID, "message").text)
    assert "error" in browser.find_element(By.ID, "message").get_attribute("class")

    # the charts: labelled axes with ticks, training and validation told apart (validation after each epoch)
    wait.until(lambda d: len(_chart(d, "acc-chart")["legend"]) == 2 and int(d.find_element(By.ID, "epoch").text) >= 3)
    loss, accuracy = _chart(browser, "loss-chart"), _chart(browser, "acc-chart")
    for drawn in (loss, accuracy):
        assert "batch" in drawn["x_title"] and len(drawn["x_ticks"]) >= 2 and len(drawn["y_ticks"]) >= 2, drawn
    assert loss["y_title"] == "loss" and accuracy["y_title"].startswith("accuracy")
    assert any("training accuracy (1 of 16" in entry for entry in accuracy["legend"]), accuracy  # in-batch negatives
    assert any("validation accuracy (1 of 4" in entry for entry in accuracy["legend"]), accuracy  # the configured game

    # the examples panel shows grids and the sender's messages; the channel's use on held-out grids
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#examples .grid")) > 0)
    assert "→" in browser.find_element(By.ID, "examples").text
    wait.until(lambda d: "distinct messages for 50 held-out grids" in d.find_element(By.ID, "message-summary").text)
    symbols = _chart(browser, "symbol-chart")
    assert symbols["x_title"] == "symbol id" and symbols["legend"] == ["position 1", "position 2"], symbols
    browser.save_screenshot(str(tmp_path / "dashboard.png"))  # for inspection
    assert (tmp_path / "dashboard.png").stat().st_size > 20_000

    browser.find_element(By.ID, "stop").click()
    wait.until(lambda d: d.find_element(By.ID, "mode").text in ("stopped", "finished"))
    # "save a checkpoint when the run ends" is ticked by default: the stopped run's final save is listed
    wait.until(lambda d: "_final.pth" in d.find_element(By.ID, "checkpoints").text)
    final = next(checkpoints.glob("run_*_final.pth"))
    assert torch.load(final, weights_only=True)["batch"] >= 1

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
