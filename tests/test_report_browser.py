"""reglab.report.html: the page is one self-contained file that a real browser renders.

The ``browser`` tests load the page in headless Chromium (Debian package ``chromium``,
installed by ``make system-deps``). Without it they are skipped with that command as the
reason (``pytest -ra`` shows it), or FAIL when run as root (CI); REGLAB_SKIP_BROWSER=1 skips
them explicitly. The other tests here are plain and fast (escaping, atomic writes,
CSV/Markdown copies).
"""

from __future__ import annotations

import os
import signal
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import require_chromium
from PIL import Image

from reglab.report import html as rhtml
from reglab.report import illustrations as ill
from reglab.report import published as pub

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
CHROMIUM_TIMEOUT_S = 120
EVIL = "<script>alert('x')</script> & <b>bold</b>"


# --------------------------------------------------------------------------- fixtures


def _sections(fig_dir: Path) -> list[rhtml.Section]:
    figures = ill.lecture_illustrations(fig_dir)
    published = pub.table("architectures", "table9_regularizers")
    evil = pd.DataFrame({"name <i>x</i>": [EVIL, "plain"], "value": [1.5, None]})
    return [
        rhtml.Section("Lecture illustrations", "Why l1 gives zeros.\n\nAnd l2 does not.", figures),
        rhtml.Section(
            "Published numbers",
            f"Escaping check: {EVIL}",
            tables=[("Table 9", published), ("Hostile <table> title", evil)],
            details={"seed": 0, "lr": 0.01, "note": EVIL},
        ),
    ]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    return rhtml.write_page(_sections(root / "figs"), root / "site", title="reglab test page")


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


@pytest.mark.browser
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


@pytest.mark.browser
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


# --------------------------------------------------------------------------- plain tests


def test_page_is_self_contained(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert text.count('src="data:image/png;base64,') == 2
    assert "http://" not in text and "https://" not in text
    assert "Content-Security-Policy" in text
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "&lt;table&gt; title" in text
    assert not list(page.parent.glob("*.tmp")), "a temp file was left behind"


def test_tables_are_written_as_csv_and_markdown(page: Path) -> None:
    site = page.parent
    csv = site / "published-numbers--table-9.csv"
    md = site / "published-numbers--table-9.md"
    assert pd.read_csv(csv)["error"].tolist() == pytest.approx([1.62, 1.60, 1.55, 1.35, 1.25, 1.05])
    md_text = md.read_text(encoding="utf-8")
    assert md_text.startswith("# Table 9") and "| dropout + max-norm" in md_text
    assert "Table 9 · quoted" in md_text  # source and exactness travel with the numbers
    hostile = (site / "published-numbers--hostile-table-title.md").read_text(encoding="utf-8")
    assert "nan" not in hostile and "–" in hostile
    assert f'href="{csv.name}"' in page.read_text(encoding="utf-8")


def test_same_table_title_twice_gets_two_files(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": [1]})
    sec = rhtml.Section("S", tables=[("T", df), ("T", df.assign(a=2))])
    rhtml.write_page([sec], tmp_path)
    assert pd.read_csv(tmp_path / "s--t.csv")["a"].item() == 1
    assert pd.read_csv(tmp_path / "s--t-2.csv")["a"].item() == 2
    rhtml.write_page([sec], tmp_path)  # re-rendering overwrites, adds no s--t-3
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == ["s--t-2.csv", "s--t.csv"]


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "index.html"
    target.write_text("old", encoding="utf-8")

    with pytest.raises(TypeError):
        rhtml.atomic_write_text(target, 123)  # type: ignore[arg-type]
    assert target.read_text(encoding="utf-8") == "old"
    assert not list(tmp_path.glob("*.tmp"))


def test_missing_image_fails_loudly(tmp_path: Path) -> None:
    sec = rhtml.Section("S", figures=[(tmp_path / "nope.png", "missing")])
    with pytest.raises(FileNotFoundError):
        rhtml.write_page([sec], tmp_path / "site")


def test_duplicate_section_titles_get_distinct_anchors() -> None:
    text = rhtml.render_page([rhtml.Section("Dropout"), rhtml.Section("Dropout")])
    assert 'id="dropout"' in text and 'id="dropout-2"' in text
