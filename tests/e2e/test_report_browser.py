"""The report in a real browser: headless Chromium renders reglab.report.html's test page
and reglab-report's whole site (every experiment's figure, decoded and painted).

Headless Chromium is Debian's ``chromium`` package, installed by ``make system-deps``.
Where it is missing these tests skip, naming that command, unless the run is CI
(REGLAB_CI=1 or CI=true), where they FAIL; REGLAB_SKIP_BROWSER=1 skips them explicitly
outside CI. The page's plain checks (escaping, atomic writes, CSV/Markdown copies) are in
tests/unit/test_report_html.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from conftest import require_chromium
from PIL import Image
from report_site_fixtures import build_site, make_report_logs, write_test_page

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",  # the page's console messages, CSP refusals, failed loads
    "--v=0",
)
CHROMIUM_TIMEOUT_S = 120


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_page(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """reglab-report's site over every experiment's synthetic sweep (report_fixtures)."""
    logs = make_report_logs(tmp_path_factory.mktemp("logs"))
    return build_site(logs, tmp_path_factory.mktemp("site"))


def _run_chromium(binary: str, args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    """Run headless Chromium with a throw-away profile; kill its whole group on timeout."""
    cmd = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}", *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=CHROMIUM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium did not finish within {CHROMIUM_TIMEOUT_S} s: {cmd}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


# --------------------------------------------------------------------------- browser tests


def test_screenshot_is_a_real_rendering(page: Path, tmp_path: Path) -> None:
    chromium = require_chromium()
    shot = tmp_path / "shot.png"
    res = _run_chromium(
        chromium, [f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri()], tmp_path
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert shot.is_file() and shot.stat().st_size > 10_000
    with Image.open(shot) as img:
        assert img.size == (1200, 2000)
        rgb = np.asarray(img.convert("RGB"), dtype=int)
    colours = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])
    assert len(colours) > 500, f"only {len(colours)} colours: a blank or broken page?"
    # The embedded plots draw in matplotlib's tab:red and tab:blue; plain HTML has neither,
    # so seeing them proves the data-URI images were decoded and painted.
    for name, target in (("tab:red", (214, 39, 40)), ("tab:blue", (31, 119, 180))):
        close = np.abs(rgb - np.array(target)).sum(axis=-1) < 30
        assert close.sum() > 200, f"no {name} pixels: the figures were not rendered"


class _DomSummary(HTMLParser):
    """Collects the tags the DOM test looks at."""

    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict[str, str | None]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.imgs.append(dict(attrs))


def test_dom_has_every_image_inline(page: Path, tmp_path: Path) -> None:
    chromium = require_chromium()
    res = _run_chromium(chromium, ["--dump-dom", page.as_uri()], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    dom = _DomSummary()
    dom.feed(res.stdout)
    assert len(dom.imgs) == 2, f"expected the 2 illustrations, DOM has {len(dom.imgs)} <img>"
    for img in dom.imgs:
        assert (img.get("src") or "").startswith("data:image/png;base64,")
        assert img.get("alt")
    assert dom.tags.count("table") == 2
    assert dom.tags.count("section") == 2
    assert "script" not in dom.tags and "b" not in dom.tags, "user text was not escaped"


def test_report_renders_in_headless_chromium(site: Path, tmp_path: Path) -> None:
    """reglab-report's whole page: no console error, refused resource or failed load, and
    the first figure (Fig 9a, matplotlib's tab:blue) painted."""
    shot = tmp_path / "shot.png"
    res = _run_chromium(
        require_chromium(),
        [f"--screenshot={shot}", "--window-size=1200,3000", site.as_uri()],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    page_errors = [
        ln
        for ln in res.stderr.splitlines()
        if "CONSOLE" in ln or "Refused to" in ln or "net::ERR" in ln
    ]
    assert not page_errors, page_errors  # CSP violations, failed loads, script errors
    with Image.open(shot) as img:
        assert img.size == (1200, 3000)
        rgb = np.asarray(img.convert("RGB"), dtype=int)
    close = np.abs(rgb - np.array((31, 119, 180))).sum(axis=-1) < 30
    assert close.sum() > 200, "no figure pixels: the embedded images were not rendered"
