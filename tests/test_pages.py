"""The pages in a real browser: the test starts the server (uvicorn, a subprocess on a free
loopback port, on a temporary SQLite database filled by two `ccm check` runs) and headless
Chromium (Debian's chromium and chromium-driver), with JavaScript disabled: the pages must be
readable without it. Screenshots go to artifacts/screenshots/ (git-ignored); the dashboard's
is copied to docs/screenshots/dashboard.png for the README.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = "apt-get install chromium chromium-driver"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ccm(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from engine.cli.main import app; app()", *args], env=env,
                          check=False, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pages")
    env = {**os.environ, "CCM_DATABASE_URL": f"sqlite:///{folder / 'ccm.sqlite'}",
           "CCM_OUTPUT_FOLDER": str(folder / "digests")}
    for args in (("check", "--as-of", "2024-09-01"), ("check", "--as-of", "2024-10-01")):   # the second finds changes
        result = _ccm(*args, env=env)
        assert result.returncode in (0, 1), result.stderr
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "engine.web.app:create_app", "--factory", "--host", "127.0.0.1",
                                "--port", str(port), "--log-level", "warning"], env=env, cwd=folder,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/parties/LAO", timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the server did not start: {process.stdout.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.2)
    yield base
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not found: these tests need Debian's Chromium; install it with "
                    f"`{INSTALL}`.", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                     "--window-size=1400,1800", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except Exception as error:  # noqa: BLE001 - a broken install: say how to fix it, never skip
        pytest.fail(f"Chromium could not start ({error}); install it with `{INSTALL}`.", pytrace=False)
    yield driver
    driver.quit()


def _shot(driver, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    assert driver.save_screenshot(str(path)), path
    assert path.stat().st_size > 10_000
    return path


def test_dashboard(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    assert "ISU dashboard" in browser.title
    browser.get(server + "/?as_of=2024-10-01")
    assert "1 October 2024" in browser.title
    for section, heading in (("overdue-reports", "Reports overdue"), ("overdue-other", "Other obligations overdue"),
                             ("unknown-reports", "Reports with no record of receipt"),
                             ("decisions-to-record", "Decisions to record"),
                             ("upcoming", "Deadlines in the next 90 days"),
                             ("extension-requests", "Extension requests due before the next meeting"),
                             ("changes", "Changes since the last check"),
                             ("timeline", "Article 3 and 4 deadlines and extensions")):
        element = browser.find_element(By.ID, section)
        assert heading in element.find_element(By.TAG_NAME, "h2").text
    # On the embedded data as of 1 Oct 2024: reports a published list names as outstanding, and the
    # requests of Germany and Lao PDR that the 12MSP (10-13 Sep 2024) considered with no decision recorded.
    for section in ("overdue-reports", "decisions-to-record", "extension-requests"):
        assert len(browser.find_elements(By.CSS_SELECTOR, f"#{section} table tr")) > 1, section
    assert "unknown, not overdue" in browser.find_element(By.ID, "unknown-reports").text
    decisions = browser.find_element(By.ID, "decisions-to-record").text
    assert "(DEU)" in decisions and "(LAO)" in decisions
    assert "13MSP" in browser.find_element(By.ID, "extension-requests").text
    changes = browser.find_elements(By.CSS_SELECTOR, "#changes table tr")
    assert len(changes) > 1, "the second check found changes since the first"
    svg = browser.find_element(By.CSS_SELECTOR, "#timeline svg")
    assert svg.size["width"] > 500 and svg.size["height"] > 100
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline svg g.row[data-party='LAO']")
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline svg .mark-completed")
    browser.set_window_size(1400, 2600)
    shot = _shot(browser, "dashboard.png")
    browser.set_window_size(1400, 1800)
    docs = ROOT / "docs" / "screenshots"
    docs.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, docs / "dashboard.png")


def test_party_page_in_french_then_spanish(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/parties/LAO?lang=fr&as_of=2019-06-01")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fr"
    assert browser.find_element(By.ID, "party-name").text == "République démocratique populaire lao (LAO)"  # UN name
    assert browser.find_element(By.ID, "party-status").text == "État partie"
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Échéances" in body and "Historique" in body and "1 août 2020" in body
    assert "dépollution des zones contaminées" in body
    details = browser.find_element(By.CSS_SELECTOR, "tr[id='ccm.art4.clearance-'] details")
    details.find_element(By.TAG_NAME, "summary").click()             # <details> opens without JavaScript
    assert "not later than ten years" in details.text and "1 Aug 2010 + 10 years = 1 Aug 2020" in details.text
    _shot(browser, "party-LAO-fr.png")
    browser.find_element(By.ID, "lang-es").click()
    assert "lang=es" in browser.current_url and "as_of=2019-06-01" in browser.current_url
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "es"
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Plazos" in body and "Historial" in body and "1 de agosto de 2020" in body
    assert browser.find_element(By.ID, "party-status").text == "Estado parte"
    _shot(browser, "party-LAO-es.png")


def test_unknown_party_page_says_why(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/parties/Lao%20Peoples%20Democratic%20Republik?lang=fr")
    assert "Did you mean" in browser.find_element(By.ID, "error-detail").text
    assert "Erreur 404" in browser.title


@pytest.mark.parametrize("raw", ["/static/../../config.toml", "/static/..%2f..%2fconfig.toml", "/parties/..%2f..%2fpyproject.toml",
                                 "/api/parties/%2e%2e%2f%2e%2e%2fconfig.toml/obligations", "/../../../etc/passwd"])
def test_raw_paths_never_reach_files(server, raw):
    """Sent byte for byte (no client normalisation of '..')."""
    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(f"GET {raw} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    assert status in (400, 404, 422), data[:200]
    assert b"[engine]" not in data and b"[project]" not in data and b"root:" not in data


def test_the_api_docs_render_in_a_browser_that_cannot_reach_any_other_host(server, tmp_path):
    """/docs with JavaScript on and every host but the loopback unresolvable: Swagger UI must come
    from the server itself and list the operations."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-dev-shm-usage", "--window-size=1400,1800", f"--user-data-dir={tmp_path / 'profile'}",
                     "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(f"{server}/docs")
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
        paths = {e.text.replace("\u200b", "") for e in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
        assert "/api/parties/{iso3}/obligations" in paths and "/api/status" in paths and "/healthz" in paths
        _shot(driver, "api-docs.png")
    finally:
        driver.quit()
