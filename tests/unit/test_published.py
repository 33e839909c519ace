"""Tests for reglab.published: the numbers must match the papers as transcribed in
shared/reference/published.md, and every entry must say where it comes from."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DATA_DIR, ISSUE_EXPERIMENTS

from reglab import published as pub

REPO = Path(__file__).resolve().parents[2]
_MD_CANDIDATES = (  # beside the data (REGLAB_DATA_DIR=<shared>/data), or the checkout's shared/
    DATA_DIR.parent / "reference" / "published.md",
    REPO / "shared" / "reference" / "published.md",
    REPO.parent / "shared" / "reference" / "published.md",
)
P_GRID = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
CORRUPTION = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def _reference_md() -> str:
    for path in _MD_CANDIDATES:
        if path.is_file():
            return path.read_text(encoding="utf-8")
    # missing reference numbers fail these tests, as missing MNIST does: never a silent skip
    pytest.fail(f"shared/reference/published.md not found (looked at {_MD_CANDIDATES})")


# --------------------------------------------------------------------------- contents


def test_fig9a_has_ten_points_with_test_106_at_half() -> None:
    df = pub.series("dropout_rate_fixed_n", "test_error")
    assert list(df.columns) == ["x", "y"]
    assert df["x"].tolist() == pytest.approx(P_GRID)
    assert df.set_index("x").loc[0.5, "y"] == pytest.approx(1.06)
    assert df.attrs["exactness"] == "figure"
    assert "Figure 9a" in df.attrs["source"]
    assert df.attrs["y_unit"] == "error %"


def test_fig9a_train_error_reaches_zero_from_p_half() -> None:
    df = pub.series("dropout_rate_fixed_n", "train_error").set_index("x")
    assert df.loc[0.1, "y"] == pytest.approx(2.73)
    assert (df.loc[0.5:, "y"] == 0.0).all()


def test_fig9b_values() -> None:
    test = pub.series("dropout_rate_fixed_pn", "test_error").set_index("x")["y"]
    train = pub.series("dropout_rate_fixed_pn", "train_error").set_index("x")["y"]
    assert test.idxmin() == pytest.approx(0.6)
    assert test.loc[0.6] == pytest.approx(1.10)
    assert train.loc[1.0] == pytest.approx(0.01)


def test_zhang_fig1c_fractions_stored_in_percent() -> None:
    expected = {
        "inception": [13, 41, 63, 79, 88, 90],
        "alexnet": [30, 52, 69, 82, 88, 90],
        "mlp_1x512": [50, 66, 76, 87, 88, 90],
    }
    for model, ys in expected.items():
        df = pub.series("label_corruption", f"test_error/{model}")
        assert df["x"].tolist() == pytest.approx(CORRUPTION)
        assert df["y"].tolist() == pytest.approx(ys)
        assert "%" in df.attrs["y_unit"] and "fraction" in df.attrs["y_unit"]


def test_zhang_fig1b_relative_time() -> None:
    df = pub.series("label_corruption", "time_to_overfit/alexnet")
    assert df["y"].tolist() == pytest.approx([1.0, 1.10, 1.23, 1.32, 1.42, 1.55])
    assert df.attrs["y_unit"] == "relative time"
    assert df.attrs["model"] == "AlexNet"


def test_zhang_fig1a_steps_in_thousands() -> None:
    df = pub.series("randomization", "steps_to_zero_loss").set_index("x")["y"]
    assert df.loc["true labels"] == pytest.approx(4.5)
    assert df.loc["random labels"] == pytest.approx(14.0)
    assert df.is_monotonic_increasing  # the paper's ordering: harder data fits later


def test_tables_have_expected_rows() -> None:
    t2 = pub.table("architectures", "table2_mnist")
    assert len(t2) == 10 and t2["error"].min() == pytest.approx(0.79)
    t9 = pub.table("architectures", "table9_regularizers").set_index("method")["error"]
    assert t9.loc["dropout + max-norm"] == pytest.approx(1.05)
    t1 = pub.table("randomization", "table1_cifar10")
    random = t1[t1["labels"] == "random labels"]
    assert len(random) == 5
    assert random["test_accuracy"].between(9.0, 11.0).all()  # chance level on 10 classes
    assert t1.attrs["column_units"]["test_accuracy"] == "accuracy %"


def test_notes_values() -> None:
    ae = pub.values("autoencoder").set_index("name")["value"]
    assert ae.loc["mean_activation_no_dropout"] == pytest.approx(2.0)
    assert ae.loc["mean_activation_dropout"] == pytest.approx(0.7)
    assert pub.values("monte_carlo")["value"].tolist() == [50]
    assert pub.values("penalties").empty


def test_claims_and_protocols_carry_sources() -> None:
    assert pub.claims("penalties") == []
    (claim,) = pub.claims("data_size")
    assert "100 and 500" in claim and "Srivastava et al. 2014" in claim
    assert any("batch 60" in p for p in pub.protocol("batchnorm"))
    settings = pub.protocol_settings("architectures")
    paper = [s for s in settings if s["where"] == "Appendix B.1"]
    assert paper[0]["settings"]["max_norm_c"] == 2  # not the example config's 3


def test_required_experiments_exist() -> None:
    assert set(pub.experiments("sweep")) >= ISSUE_EXPERIMENTS
    assert {"autoencoder", "monte_carlo", "conv_nets"} <= set(pub.experiments("note"))


# --------------------------------------------------------------------------- schema


def test_every_entry_has_source_exactness_and_units() -> None:
    data = pub.load_published()
    count = 0
    for exp, kind, name, entry in pub.iter_entries(data):
        count += 1
        assert entry["source"]["paper"] in data["papers"], (exp, kind, name)
        assert entry["source"]["where"].strip(), (exp, kind, name)
        assert entry["exactness"] in pub.EXACTNESS_TAGS, (exp, kind, name)
        if kind == "series":
            assert entry["x_unit"] and entry["y_unit"]
        if kind == "values":
            assert entry["unit"]
    assert count > 30


def test_percent_values_lie_in_0_100() -> None:
    for exp in pub.experiments():
        for name in pub.series_names(exp):
            df = pub.series(exp, name)
            if "%" in df.attrs["y_unit"]:
                assert df["y"].between(0, 100).all(), (exp, name)


def _broken_copy(tmp_path: Path, mutate: Any) -> Path:
    data = pub.load_published()
    mutate(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["experiments"]["data_size"]["claims"][0].pop("source"), "source"),
        (
            lambda d: d["experiments"]["dropout_rate_fixed_n"]["series"]["test_error"].update(
                exactness="approx"
            ),
            "exactness",
        ),
        (
            lambda d: d["experiments"]["label_corruption"]["series"]["test_error/inception"][
                "y"
            ].__setitem__(slice(None), [0.13, 0.41, 0.63, 0.79, 0.88, 0.90]),
            "fraction",
        ),
        (
            lambda d: d["experiments"]["dropout_rate_fixed_n"]["series"]["test_error"]["y"].pop(),
            "equal length",
        ),
    ],
)
def test_validation_rejects_broken_files(tmp_path: Path, mutate: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pub.load_published(_broken_copy(tmp_path, mutate))


def test_load_returns_independent_copies() -> None:
    first = pub.load_published()
    first["experiments"].clear()
    assert pub.load_published()["experiments"]


def test_unknown_names_raise_keyerror() -> None:
    with pytest.raises(KeyError, match="unknown experiment"):
        pub.series("no_such_experiment", "test_error")
    with pytest.raises(KeyError, match="known"):
        pub.series("data_size", "test_error")


# --------------------------------------------------------------------------- vs reference


def _numbers(text: str) -> set[float]:
    """Every number written in ``text``: 1,649,402 -> 1649402; 100k -> 100000; .13 -> 0.13."""
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    found = set()
    for m in re.finditer(r"(?<![\d.])(\d*\.\d+|\d+)([kK])?", text):
        found.add(round(float(m.group(1)) * (1000 if m.group(2) else 1), 6))
    return found


def _numbers_in_data(obj: Any, scale: float = 1.0) -> set[float]:
    """Numbers held anywhere in the data; % values also as fractions, thousands as units."""
    if isinstance(obj, dict):
        unit = " ".join(str(obj.get(k, "")) for k in ("y_unit", "unit"))
        scale = 1000.0 if "thousands" in unit else 1.0
        return set().union(*(_numbers_in_data(v, scale) for v in obj.values()), set())
    if isinstance(obj, list):
        return set().union(*(_numbers_in_data(v, scale) for v in obj), set())
    if isinstance(obj, bool):
        return set()
    if isinstance(obj, int | float):
        return {round(float(obj), 6), round(float(obj) / 100, 6), round(float(obj) * scale, 6)}
    return _numbers(str(obj)) if isinstance(obj, str) else set()


def test_every_number_of_the_reference_is_in_the_data_file() -> None:
    """ONE data file holds every published number: none may be dropped in transcription."""
    missing = _numbers(_reference_md()) - _numbers_in_data(pub.load_published())
    assert not missing, f"numbers of published.md missing from published.yaml: {missing}"


def _md_row(md: str, label: str) -> list[float]:
    line = next(ln for ln in md.splitlines() if ln.startswith(f"| {label} |"))
    return [float(c) for c in line.strip("| \n").split("|")[1:]]


@pytest.mark.parametrize(
    ("label", "experiment", "name"),
    [
        ("(a) test %", "dropout_rate_fixed_n", "test_error"),
        ("(a) train %", "dropout_rate_fixed_n", "train_error"),
        ("(b) test %", "dropout_rate_fixed_pn", "test_error"),
        ("(b) train %", "dropout_rate_fixed_pn", "train_error"),
    ],
)
def test_fig9_matches_reference_table(label: str, experiment: str, name: str) -> None:
    expected = _md_row(_reference_md(), label)
    assert pub.series(experiment, name)["y"].tolist() == pytest.approx(expected)


@pytest.mark.parametrize(
    ("panel", "model", "name", "scale"),
    [
        ("b", "Inception", "time_to_overfit/inception", 1.0),
        ("b", "AlexNet", "time_to_overfit/alexnet", 1.0),
        ("b", "MLP 1x512", "time_to_overfit/mlp_1x512", 1.0),
        ("c", "Inception", "test_error/inception", 100.0),
        ("c", "AlexNet", "test_error/alexnet", 100.0),
        ("c", "MLP 1x512", "test_error/mlp_1x512", 100.0),
    ],
)
def test_zhang_fig1_matches_reference(panel: str, model: str, name: str, scale: float) -> None:
    md = _reference_md()
    fig1 = md[md.index("### Figure 1 (") :]
    block = fig1[fig1.index(f"({panel}) ") :]
    m = re.search(re.escape(model) + r" ((?:\d*\.?\d+ / )+\d*\.?\d+)", block)
    assert m, f"{model} not found in Fig 1{panel} of published.md"
    expected = [float(v) * scale for v in m.group(1).split(" / ")]
    assert pub.series("label_corruption", name)["y"].tolist() == pytest.approx(expected)
