"""regularizer_comparison (Srivastava et al. 2014 Table 9): each arm composes with its
regularizer, dropout and grid; the sweep runs every arm × strength × seed; the report picks
each arm's setting on validation error, never on test error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import CONF, compose_config
from omegaconf import OmegaConf, open_dict

from reglab import published as pub
from reglab.report import experiments as exps
from reglab.report import sweeps
from reglab.report.experiments import regularizer_comparison as rc
from reglab.report.stats import DIFF, MEASURED

ARMS = sorted(p.stem for p in (CONF / "comparison_arm").glob("*.yaml"))
#: arm → (regularizer class, retention p input, p hidden, {strength: the grid's values})
EXPECTED = {
    "l2": ("L2", 1.0, 1.0, {"weak": {"lam": 5e-5}, "strong": {"lam": 5e-3}}),
    "dropout_l2": ("L2", 0.8, 0.5, {"medium": {"lam": 5e-4}}),
    "l2_l1": ("ElasticNet", 1.0, 1.0, {"weak": {"lam_l1": 1e-5, "lam_l2": 5e-4}}),
    "max_norm": ("MaxNorm", 1.0, 1.0, {"weak": {"c": 4.0}, "strong": {"c": 2.0}}),
    "dropout_max_norm": ("MaxNorm", 0.8, 0.5, {"medium": {"c": 3.0}}),
}


def _resolved(*overrides: str) -> dict:
    """The composed config, resolved (the loggers' ${hydra:...} paths exist only in a job)."""
    cfg = compose_config("experiment=regularizer_comparison", *overrides)
    with open_dict(cfg):
        del cfg["logger"]
    return OmegaConf.to_container(cfg, resolve=True)


def test_the_arms_are_table_9s_runnable_rows() -> None:
    assert set(ARMS) == set(EXPECTED)
    published = pub.table("regularizer_comparison", "table9_regularizers")
    assert set(published["arm"].dropna()) == set(ARMS)
    # the same published numbers as the architectures entry's copy of Table 9
    other = pub.table("architectures", "table9_regularizers").set_index("method")["error"]
    assert published.set_index("method")["error"].to_dict() == other.to_dict()


@pytest.mark.parametrize("scale", ["quick", "paper"])
@pytest.mark.parametrize("arm", sorted(EXPECTED))
def test_each_arm_composes_its_regularizer_dropout_and_grid(arm: str, scale: str) -> None:
    cls, p_input, p_hidden, grid = EXPECTED[arm]
    for strength, values in grid.items():
        resolved = _resolved(
            f"scale={scale}", f"comparison_arm={arm}", f"comparison.strength={strength}"
        )
        reg = resolved["regularizer"]
        assert reg["_target_"] == f"reglab.regularizers.{cls}"
        assert {k: reg[k] for k in values} == pytest.approx(values)
        assert (resolved["dropout"]["p_input"], resolved["dropout"]["p_hidden"]) == (
            p_input,
            p_hidden,
        )
        assert resolved["dropout"]["mode"] == "weight_scaling"
        assert resolved["data"]["normalize"] == "unit"  # the authors' raw [0, 1] pixels
        widths = [1024, 1024, 2048] if scale == "paper" else [512, 512, 1024]
        assert resolved["model"]["hidden"] == widths


def test_outside_a_sweep_it_runs_the_papers_best_arm() -> None:
    cfg = _resolved()
    assert cfg["regularizer"]["_target_"] == "reglab.regularizers.MaxNorm"
    assert cfg["regularizer"]["c"] == 3.0 and cfg["dropout"]["p_hidden"] == 0.5


# --------------------------------------------------------------------------- report


def _runs(errors: dict[tuple[str, str], tuple[float, float]]) -> pd.DataFrame:
    """Completed runs, two seeds per (arm, strength): (val, test) error, seed 1 +0.1."""
    settings = {"weak": 4.0, "medium": 3.0, "strong": 2.0}
    rows = []
    for (arm, strength), (val, test) in errors.items():
        for seed in (0, 1):
            row = dict.fromkeys(sweeps.RUN_COLUMNS)
            row |= {
                "experiment": "regularizer_comparison",
                "status": "completed",
                "overrides": [f"comparison_arm={arm}", f"comparison.strength={strength}"],
                "seed": seed,
                "choices": {"comparison_arm": arm},
                "config": {
                    "comparison": {"strength": strength},
                    "regularizer": {"_target_": "x", "c": settings[strength]},
                },
                "val_error": val + 0.1 * seed,
                "test_error": test + 0.1 * seed,
            }
            rows.append(row)
    return pd.DataFrame(rows, columns=list(sweeps.RUN_COLUMNS))


def test_each_arm_reports_test_error_at_its_best_validation_setting() -> None:
    runs = _runs(
        {
            ("max_norm", "weak"): (2.0, 1.0),  # best test, worse validation: not chosen
            ("max_norm", "medium"): (1.5, 1.8),
            ("max_norm", "strong"): (1.5, 1.2),  # ties with medium: the first in grid order
            ("dropout_max_norm", "strong"): (1.1, 1.05),
            ("mine", "weak"): (3.0, 3.0),  # an arm Table 9 does not have
        }
    )
    assert "regularizer_comparison" in exps.registry()
    report = exps.plot_experiment("regularizer_comparison", runs)
    (_, table), (_, grid) = report.tables
    row = table.set_index("method").loc["max-norm"]
    assert row["arm"] == "max_norm" and row["chosen setting"] == "medium: c=3"
    assert row[MEASURED] == pytest.approx(1.85)  # mean of 1.8 and 1.9
    assert row["sd"] == pytest.approx(np.std([1.8, 1.9], ddof=1))
    assert row["seeds"] == 2 and row["published"] == pytest.approx(1.35)
    assert row[DIFF] == pytest.approx(0.5)
    best = table.set_index("method").loc["dropout + max-norm"]
    assert best["published"] == pytest.approx(1.05) and best["chosen setting"] == "strong: c=2"
    kl = table.set_index("method").loc["L2 + KL-sparsity"]
    assert kl["arm"] == "not run" and kl["seeds"] == 0 and np.isnan(kl[MEASURED])
    assert table["method"].iloc[-1] == "mine" and np.isnan(table["published"].iloc[-1])
    assert grid["chosen"].sum() == 3  # one per arm run
    assert table.attrs["source"].startswith("Srivastava") and grid.attrs["source"]
    ax_test, ax_val = report.figure.axes[:2]
    labels = ax_test.get_legend_handles_labels()[1]
    assert any(lb.startswith("published") for lb in labels)
    assert ax_val.get_ylabel().startswith("validation error %")


def test_setting_names_each_regularizers_strengths() -> None:
    assert rc.setting({"regularizer": {"lam": 5e-4}}) == "λ=0.0005"
    assert rc.setting({"regularizer": {"lam_l1": 1e-4, "lam_l2": 5e-4}}) == "λ₁=0.0001, λ₂=0.0005"
    assert rc.setting({"regularizer": {"c": 3.0}}) == "c=3"
    assert rc.setting({}) == "none"
