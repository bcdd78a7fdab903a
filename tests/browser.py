"""Headless Chromium for the HTML report's tests: open a file with the network off and say what happened.

Selenium drives Debian's chromium through its chromedriver (packages ``chromium`` and
``chromium-driver``, which .ci/run installs). The network is cut at the DevTools level, every request the
page makes is read from the performance log, and the console from the browser log.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PageVisit:
    console: list[dict]  # browser console entries (level, message)
    requests: list[str]  # every URL the page asked for, the file itself included
    text: str  # the page's visible text
    sections: list[str]  # ids of the <section> elements
    width: int  # the document's width at the viewport's (no horizontal scrolling when it fits)
    viewport: int
    images: list[dict] | None = None  # every <img>: alt, loaded (complete with a natural width), its natural size
    figures: list[dict] | None = None  # every <figure>: aria-label, whether it holds a drawn <svg> or <img>, its size
    overflowing: list[str] | None = None  # the sections whose .scroll box scrolls sideways (a table wider than the page)


def chromedriver() -> str | None:
    return shutil.which("chromedriver") or next((p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
                                                  if Path(p).exists()), None)


def visit(path: Path, screenshot: Path | None = None, width: int = 1200, height: int = 900) -> PageVisit:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(arg)
    if Path("/usr/bin/chromium").exists():
        options.binary_location = "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver()), options=options)
    try:
        # A phone's viewport: Chromium keeps desktop windows at least ~500 px wide, so emulate the device.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.emulateNetworkConditions",
                               {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0})
        driver.get(path.resolve().as_uri())
        if screenshot is not None:
            total = driver.execute_script("return document.documentElement.scrollHeight")
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                   {"width": width, "height": min(int(total) + 40, 16000), "deviceScaleFactor": 1,
                                    "mobile": width < 600})
            driver.save_screenshot(str(screenshot))
        requests = []
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                requests.append(message["params"]["request"]["url"])
        return PageVisit(
            console=driver.get_log("browser"),
            requests=requests,
            text=driver.find_element(By.TAG_NAME, "body").text,
            sections=[e.get_attribute("id") for e in driver.find_elements(By.TAG_NAME, "section")],
            width=int(driver.execute_script("return document.documentElement.scrollWidth")),
            viewport=int(driver.execute_script("return document.documentElement.clientWidth")),
            images=driver.execute_script(
                "return Array.from(document.images).map(i => ({alt: i.alt, loaded: i.complete && i.naturalWidth > 0,"
                " width: i.naturalWidth, height: i.naturalHeight, shown: i.getBoundingClientRect().width}))"),
            figures=driver.execute_script(
                "return Array.from(document.querySelectorAll('figure')).map(f => {const g = f.querySelector('svg, img');"
                " const r = g ? g.getBoundingClientRect() : {width: 0, height: 0};"
                " return {label: f.getAttribute('aria-label') || '', drawn: !!g, width: r.width, height: r.height,"
                " text: f.innerText}})"),
            overflowing=driver.execute_script(
                "return Array.from(document.querySelectorAll('.scroll')).filter(d => d.scrollWidth > d.clientWidth + 1)"
                ".map(d => (d.closest('section') || {}).id || '')"),
        )
    finally:
        driver.quit()
