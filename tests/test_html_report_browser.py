"""The HTML report in a real headless browser: it loads with no request, and every plot draws.

Chromium (Debian's `chromium` package; `scripts/setup.sh` installs it where apt-get can) is driven
over the DevTools protocol on a pipe, with every host name resolving to nothing. A page passes
when the only request the browser makes for it is the page itself (data: URLs aside), none fails
and the console logs no error (a load the page's Content-Security-Policy blocks is one); each
plot's screenshot must be more than a blank rectangle and show eager's and compiled's colours.
The check is tested too: a CDN script, a web font and an image planted in the page are caught,
before and after the policy.

Without chromium the tests skip, saying so; where the `CI` environment variable is set they fail
instead, since CI installs it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from analyzer.render.html import report_html
from analyzer.render.html.compile_time import STAGE_COLOUR
from analyzer.render.html.plot import COMPILED_COLOUR, EAGER_COLOUR

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "act-cpu" / "diagnosis.json"
FIXTURES = ROOT / "tests" / "fixtures"
WIDTH, HEIGHT = 1200, 900
TIMEOUT_S = 30
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--remote-debugging-pipe",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: any host name fails to resolve
    f"--window-size={WIDTH},{HEIGHT}",
)
CDN_SCRIPT = "https://cdn.jsdelivr.net/npm/plotly.js-dist-min/plotly.min.js"
WEB_FONT = "https://fonts.googleapis.com/css2?family=Inter"
REMOTE_IMAGE = "http://example.com/logo.png"
PLANTED = (
    f'<script src="{CDN_SCRIPT}"></script><link rel="stylesheet" href="{WEB_FONT}">'
    f'<img src="{REMOTE_IMAGE}" alt="">'
)


def chromium_binary() -> str:
    found = (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if found:
        return found
    reason = "no chromium on PATH: scripts/setup.sh installs Debian's (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser test")
    pytest.skip(reason)


def _above_four(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Chromium:
    """A headless Chromium on the DevTools protocol, over a pipe (fds 3 and 4 in the browser)."""

    def __init__(self, binary: str) -> None:
        to_browser, self._writer = os.pipe()
        self._reader, from_browser = os.pipe()
        # above 4, so that neither end is overwritten when bash moves them to 3 and 4
        to_browser, from_browser = (_above_four(to_browser), _above_four(from_browser))
        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        redirect = f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser}'
        self.process = subprocess.Popen(
            ["bash", "-c", redirect, binary, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}"],
            pass_fds=(to_browser, from_browser),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._last_id = 0
        self.events: list[dict[str, Any]] = []

    def send(
        self, method: str, params: Mapping[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        self._last_id += 1
        message: dict[str, Any] = {
            "id": self._last_id,
            "method": method,
            "params": dict(params or {}),
        }
        if session:
            message["sessionId"] = session
        os.write(self._writer, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = self._read(deadline)
            if reply.get("id") != self._last_id:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            return reply.get("result", {})

    def wait_for(self, method: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not any(event.get("method") == method for event in self.events):
            self.events.append(self._read(deadline))

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._reader], [], [], max(left, 0))
            if not ready:
                raise TimeoutError(f"chromium sent nothing for {TIMEOUT_S} s")
            chunk = os.read(self._reader, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError, TimeoutError, RuntimeError):
            self.send("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._writer)
        os.close(self._reader)
        shutil.rmtree(self._profile, ignore_errors=True)


@dataclass
class Loaded:
    """A page as the browser loaded it: what it asked for, what failed, what it logged."""

    url: str
    requests: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Every request but the page itself and data: URLs, every failed load, every error."""
        elsewhere = [u for u in self.requests if u != self.url and not u.startswith("data:")]
        return [*(f"request {u}" for u in elsewhere), *self.failures, *self.errors]


class Tab:
    def __init__(self, browser: Chromium) -> None:
        self.browser = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        self.session = attached["sessionId"]
        for domain in ("Network", "Page", "Log", "Runtime"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
        )

    def send(self, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, self.session)

    def load(self, path: Path) -> Loaded:
        self.browser.events.clear()
        url = path.resolve().as_uri()
        self.send("Page.navigate", {"url": url})
        self.browser.wait_for("Page.loadEventFired")
        self.evaluate("document.readyState")  # events logged during the load arrive before this
        loaded = Loaded(url)
        for event in self.browser.events:
            if event.get("sessionId") != self.session:
                continue
            params = event.get("params") or {}
            method = event.get("method")
            if method == "Network.requestWillBeSent":
                loaded.requests.append(params["request"]["url"])
            elif method == "Network.loadingFailed":
                reason = params.get("blockedReason") or params.get("errorText")
                loaded.failures.append(f"failed load: {reason}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                loaded.errors.append(f"console: {params['entry']['text']}")
            elif method == "Runtime.exceptionThrown":
                loaded.errors.append(f"exception: {params['exceptionDetails'].get('text')}")
        return loaded

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result["result"].get("value")

    def plots(self) -> list[dict[str, Any]]:
        """Each plot's name and its box on the page (CSS pixels from the page's top)."""
        return self.evaluate(
            "[...document.querySelectorAll('figure.plot')].map(f => {"
            "const r = f.querySelector('svg').getBoundingClientRect();"
            "return {name: f.dataset.plot, x: r.left + scrollX, y: r.top + scrollY,"
            " width: r.width, height: r.height}; })"
        )

    def screenshot(self, box: Mapping[str, float]) -> np.ndarray:
        """The box as the browser drew it: RGB pixels, as int16 to subtract colours."""
        clip = {k: box[k] for k in ("x", "y", "width", "height")} | {"scale": 1}
        shot = self.send(
            "Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True}
        )
        image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
        return np.asarray(image, dtype=np.int16)


@pytest.fixture(scope="module")
def tab() -> Iterator[Tab]:
    browser = Chromium(chromium_binary())
    try:
        yield Tab(browser)
    finally:
        browser.close()


def pixels_near(image: np.ndarray, colour: str, tolerance: int = 24) -> int:
    """How many pixels are within `tolerance` of `colour` (#rrggbb) in every channel."""
    target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    return int((np.abs(image - target).max(axis=2) <= tolerance).sum())


def drawn(image: np.ndarray) -> tuple[int, float]:
    """How many colours, and which share of the pixels is not white."""
    colours = len(np.unique(image.reshape(-1, 3), axis=0))
    return colours, float((image.min(axis=2) < 250).mean())


def tiny_with_planted_divergence() -> dict[str, Any]:
    diagnosis = json.loads((FIXTURES / "diagnosis_act_tiny_inductor.json").read_text())
    diagnosis["probes"]["divergence"] = json.loads(
        (FIXTURES / "divergence_planted.json").read_text()
    )
    return diagnosis


CASES = {
    "act-cpu example": (
        lambda: json.loads(EXAMPLE.read_text()),
        ["timing", "time", "compile-time", "divergence-scenarios"],
    ),
    "tiny inductor, planted divergence": (
        tiny_with_planted_divergence,
        ["timing", "time", "divergence-scenarios", "divergence-modules"],
    ),
}
SIDE_COLOURED = {"timing", "time", "divergence-scenarios", "divergence-modules"}


@pytest.mark.parametrize("case", CASES)
def test_the_report_loads_offline_and_every_plot_draws(tab: Tab, tmp_path: Path, case: str) -> None:
    build, expected_plots = CASES[case]
    page = tmp_path / "report.html"
    page.write_text(report_html(build()), encoding="utf-8")
    loaded = tab.load(page)
    assert loaded.requests == [loaded.url]
    assert loaded.problems() == []
    assert tab.evaluate("document.querySelectorAll('section').length") == 9
    plots = tab.plots()
    assert [p["name"] for p in plots] == expected_plots
    for plot in plots:
        assert plot["width"] > 600 and plot["height"] > 150, plot
        image = tab.screenshot(plot)
        colours, ink = drawn(image)
        assert colours > 50 and ink > 0.03, (plot["name"], colours, ink)
        if plot["name"] in SIDE_COLOURED:
            assert pixels_near(image, EAGER_COLOUR) > 30, plot["name"]
            assert pixels_near(image, COMPILED_COLOUR) > 30, plot["name"]
        else:
            stages = [c for c in STAGE_COLOUR.values() if pixels_near(image, c, 8) > 30]
            assert len(stages) >= 4, plot["name"]


@pytest.mark.parametrize("where", ["before the policy", "after the policy"])
def test_a_planted_cdn_link_is_caught(tab: Tab, tmp_path: Path, where: str) -> None:
    """The check is real: a page that would reach a CDN, a font server or an image host fails it,
    whether or not its Content-Security-Policy (in <head>, first) stops the loads."""
    markup = report_html(json.loads(EXAMPLE.read_text()))
    anchor = "<head>" if where == "before the policy" else "</head>"
    planted = markup.replace(
        anchor, f"<head>{PLANTED}" if anchor == "<head>" else f"{PLANTED}</head>", 1
    )
    page = tmp_path / "planted.html"
    page.write_text(planted, encoding="utf-8")
    problems = tab.load(page).problems()
    for url in (CDN_SCRIPT, WEB_FONT, REMOTE_IMAGE):
        assert f"request {url}" in problems, problems
    assert any(p.startswith("failed load") for p in problems)


def test_markup_in_the_record_stays_text_in_the_browser(tab: Tab, tmp_path: Path) -> None:
    planted = "<img src=x onerror=alert(1)><script>document.title='owned'</script>"
    diagnosis = json.loads(EXAMPLE.read_text())
    diagnosis["findings"][0]["cause"] = planted
    page = tmp_path / "report.html"
    page.write_text(report_html(diagnosis), encoding="utf-8")
    assert tab.load(page).problems() == []
    assert tab.evaluate("document.querySelectorAll('script, img').length") == 0
    assert tab.evaluate("document.title") == "compile-diagnose: act"
    assert planted in tab.evaluate("document.querySelector('#findings').innerText")
