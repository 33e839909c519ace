"""reglab-report (reglab.report.cli): the page holds every figure, table and illustration;
re-rendering removes the tables it no longer writes. That Chromium renders it:
tests/e2e/test_report_browser.py."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from report_fixtures import make_all
from report_site_fixtures import build_site, make_report_logs

from reglab.report import cli
from reglab.report.stats import DIFF


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every experiment's synthetic sweep, Fig 9a's with a failed, a diverged, a killed and
    a never-started job, and a sweep of the user's own (report_site_fixtures.make_report_logs)."""
    return make_report_logs(tmp_path_factory.mktemp("logs"))


@pytest.fixture(scope="module")
def site(logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_site(logs, tmp_path_factory.mktemp("site"))


def test_page_holds_every_figure_table_and_illustration(site: Path) -> None:
    html = site.read_text(encoding="utf-8")
    out = site.parent
    # 8 experiment figures + a user's sweep (generic) + 2 numpy + 1 model illustration
    assert html.count('src="data:image/png;base64,') == 12
    assert "gets the generic figure" in html and "Table 9" in html
    assert "batchnorm: no sweep" in html  # no batchnorm sweep: the page says so
    assert "no batchnorm sweep was found" in html
    assert "caption of proximal_l1" in html
    assert "Not generated yet: autoencoder_features" in html
    fig9 = next(out.glob("*fig-9a*test-error-against-p.csv"))
    table = pd.read_csv(fig9)
    assert {"measured", "published", DIFF} <= set(table.columns)
    assert table[DIFF].notna().any()
    seeds = table.set_index("p")["seeds"]
    assert seeds[0.5] == 1 and seeds[0.8] == 1 and seeds[0.4] == 2  # failed/diverged left out
    assert "Figure 9a" in next(out.glob("*fig-9a*test-error-against-p.md")).read_text()
    excluded = pd.read_csv(next(out.glob("*fig-9a*runs-not-included*.csv")))
    assert len(excluded) == 4
    assert "NOT finished" in html
    assert "Completed runs (16 rows)" in html  # folded listing of the plotted runs
    for png in (out / "figures").glob("*.png"):
        with Image.open(png) as img:
            assert img.size[0] > 500


def test_rerender_removes_tables_it_no_longer_writes(tmp_path: Path) -> None:
    swept = make_all(tmp_path / "logs", ["dropout_rate_fixed_n", "penalties"])
    out = tmp_path / "site"
    out.mkdir()
    (out / "notes.csv").write_text("mine\n")  # not the report's: never touched
    cli.build_report([tmp_path / "logs" / "sweeps"], out)
    stale = {p.name for p in out.glob("*.csv")}
    cli.build_report([swept["penalties"]], out)
    left = {p.name for p in out.glob("*.csv")}
    assert "notes.csv" in left
    assert not any("fig-9a" in name for name in left) and any("fig-9a" in n for n in stale)
    assert any("penalties" in name for name in left)
