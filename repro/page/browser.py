"""The system's Chromium, headless, driven by Selenium: the page's tests and its screenshot (scripts/
page_screenshot.py) open it here. Chromium and its driver come from the system's packages (Debian: chromium,
chromium-driver); both paths are given, so Selenium never looks for or downloads a driver. No flag loosens
file:// access: the page must work as a user's browser opens it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def _find(names: tuple[str, ...], env: str) -> str:
    found = os.environ.get(env) or next((p for p in map(shutil.which, names) if p), None)
    if not found:
        raise RuntimeError(f"no {names[0]} found (install the system's chromium and chromium-driver, or set ${env})")
    return found


def chromium(width: int = 1280, height: int = 1900):
    """A headless Chromium WebDriver that keeps the browser's console and network logs (goog:loggingPrefs)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _find(CHROMIUM, "CHROMIUM")
    # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start; it does not touch file:// rules.
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(_find(("chromedriver",), "CHROMEDRIVER")), options=options)


def page_url(folder: Path) -> str:
    return (Path(folder).resolve() / "index.html").as_uri()
