"""reglab.report.html: the page is one self-contained file (images inline, user text
escaped, no network), written atomically, with CSV/Markdown copies of its tables.

That a real browser renders it is checked in tests/e2e/test_report_browser.py.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from report_site_fixtures import write_test_page

from reglab.report import html as rhtml


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_page(tmp_path_factory.mktemp("report"))


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
