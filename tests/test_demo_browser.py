"""The demo shop in a real browser: headless Chromium against ``python -m examples.shop``
served by uvicorn in a subprocess, as ``make demo`` runs it.

It walks what a newcomer does in the first hour (shop, sign in, reload, restart the
server, sign out) and what an attacker tries (replaying a signed-out cookie, altering
one), and reads the cookies back from the browser's own cookie store, so the attributes
checked are the ones the browser accepted.

Chromium and its driver come from the system (Debian: ``apt-get install chromium
chromium-driver``); nothing is downloaded at run time.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="no Chromium here: apt-get install chromium chromium-driver",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Demo:
    """``python -m examples.shop`` on a loopback port, its sessions and key in ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "examples.shop", "--host", "127.0.0.1", "--port", str(self.port)]
        env = {**os.environ, "SATCHEL_DEMO_DIR": str(self.home)}
        env.pop("SATCHEL_DEMO_SECRET", None)  # the key is the one kept in home, across restarts
        log = (self.home / "server.log").open("ab")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the demo exited: {(self.home / 'server.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail("the demo did not listen within 30 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # uvicorn shuts down cleanly and closes the storage
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, for errors
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")  # never let selenium's manager fetch a browser or driver
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


@pytest.fixture
def demo(tmp_path: Path, browser: webdriver.Chrome) -> Iterator[Demo]:
    server = Demo(tmp_path)
    server.start()
    browser.delete_all_cookies()
    yield server
    server.stop()


def click(driver: webdriver.Chrome, element: WebElement) -> None:
    """Click a form's button and wait for the page the form leads to."""
    old = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 10).until(lambda d: not _alive(old))


def _alive(element: WebElement) -> bool:
    try:
        element.tag_name  # noqa: B018 - raises once the page it belonged to is gone
        return True
    except StaleElementReferenceException:
        return False
    except WebDriverException as exc:
        # asked while the next page replaces it, the browser may say so in its own words
        if "does not belong to the document" in str(exc):
            return False
        raise


def panel(driver: webdriver.Chrome, name: str) -> str:
    """What the sessions panel says about the mapping ``name``."""
    return driver.find_element(By.ID, f"session-{name}").text


def cookies(driver: webdriver.Chrome) -> dict[str, dict[str, Any]]:
    """The browser's own cookie store for the page's site, by name."""
    return {c["name"]: c for c in driver.get_cookies()}


def sign_in(driver: webdriver.Chrome, url: str, name: str) -> None:
    driver.get(f"{url}/login")
    driver.find_element(By.NAME, "user").send_keys(name)
    click(driver, driver.find_element(By.CSS_SELECTOR, "form button"))


def set_cookie(driver: webdriver.Chrome, name: str, value: str) -> None:
    """Put a cookie into the browser's store as the demo would have set it."""
    driver.add_cookie({"name": name, "value": value, "path": "/", "httpOnly": True, "sameSite": "Lax"})


def test_a_first_hour_in_the_shop(browser: webdriver.Chrome, demo: Demo) -> None:
    driver = browser
    driver.get(demo.url)
    assert driver.title == "satchel shop"
    assert "no cookie" in panel(driver, "cart")

    # shopping: the cart is a signed cookie the page's scripts cannot read
    click(driver, driver.find_element(By.CSS_SELECTOR, 'button[value="apple"]'))
    click(driver, driver.find_element(By.CSS_SELECTOR, 'button[value="apple"]'))
    assert "Cart (2)" in driver.find_element(By.TAG_NAME, "header").text
    assert "Cart(items={'apple': 2})" in panel(driver, "cart")
    cart = cookies(driver)["cart"]
    assert (cart["httpOnly"], cart["sameSite"], cart["path"], cart["secure"]) == (True, "Lax", "/", False)
    assert 7 * 86400 - 120 < cart["expiry"] - time.time() <= 7 * 86400  # Max-Age, as configured
    assert f"cart=<{len(cart['value'])} characters>; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax" in (
        panel(driver, "cart")
    )
    assert driver.execute_script("return document.cookie") == ""  # HttpOnly

    # signing in: the login is a row in SQLite, the cookie only carries its signed ID
    sign_in(driver, demo.url, "ada")
    assert "signed in as ada" in driver.find_element(By.TAG_NAME, "header").text
    sid = cookies(driver)["sid"]
    assert (sid["httpOnly"], sid["sameSite"], sid["path"], sid["secure"]) == (True, "Lax", "/", False)
    assert 3600 - 120 < sid["expiry"] - time.time() <= 3600
    login = panel(driver, "sid")
    assert "Login(user='ada')" in login
    assert "stored row: key" in login
    assert "unless used again" in login
    assert sid["value"] not in driver.page_source  # the ID stays out of the page

    # no console errors so far; the page's icon is an image (headless Chromium does not
    # fetch icons by itself, so the test asks for it as the page names it)
    console = driver.get_log("browser")  # type: ignore[no-untyped-call]
    assert [e for e in console if e["level"] == "SEVERE"] == []
    icon = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(document.querySelector('link[rel=icon]').href)"
        ".then(r => done([r.status, r.headers.get('content-type')]))"
    )
    assert icon[0] == 200
    assert icon[1].startswith("image/svg+xml")

    # a reload, then a server restart on the same database and key: nothing is lost
    driver.refresh()
    assert "signed in as ada" in driver.find_element(By.TAG_NAME, "header").text
    demo.stop()
    demo.start()
    driver.get(f"{demo.url}/cart")
    assert "2 x apple" in driver.find_element(By.TAG_NAME, "ul").text
    assert "signed in as ada" in driver.find_element(By.TAG_NAME, "header").text

    # signing out ends the session on the server: the old cookie, replayed, opens nothing
    click(driver, driver.find_element(By.CSS_SELECTOR, 'form[action="/logout"] button'))
    assert "sid" not in cookies(driver)
    assert "no cookie" in panel(driver, "sid")
    set_cookie(driver, "sid", sid["value"])
    driver.get(demo.url)
    assert driver.find_element(By.LINK_TEXT, "Sign in")
    assert "refused" in panel(driver, "sid")

    # an altered cart reads as no cart, and the page still works
    value = cookies(driver)["cart"]["value"]
    middle = len(value) // 2
    set_cookie(driver, "cart", value[:middle] + ("B" if value[middle] == "A" else "A") + value[middle + 1 :])
    driver.get(f"{demo.url}/cart")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Cart"
    assert "empty" in driver.find_element(By.TAG_NAME, "ul").text
    assert "sent, but refused" in panel(driver, "cart")


def test_unknown_pages_and_refused_names(browser: webdriver.Chrome, demo: Demo) -> None:
    driver = browser
    driver.get(f"{demo.url}/no/such/page")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Page not found"
    click(driver, driver.find_element(By.LINK_TEXT, "Back to the shop"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Shop"

    for name, message in [("", "Enter a name to sign in."), ("x" * 41, "at most 40 characters")]:
        sign_in(driver, demo.url, name)
        assert message in driver.find_element(By.CSS_SELECTOR, "[role=alert]").text
        assert "sid" not in cookies(driver)  # a refused name keeps nothing
    sign_in(driver, demo.url, "x" * 40)
    assert f"signed in as {'x' * 40}" in driver.find_element(By.TAG_NAME, "header").text
