"""A researcher's own model and regularizer (issue 19): the two files of README's "Your own
model" / "Your own regularizer", from folders outside the package (tests/fixtures/user_conf
through ``hydra.searchpath``, tests/fixtures/user_code on the path), train alone and in
stacks. The old engine stopped on the model ("no member version of Block"), trained a
user's nn.Dropout without dropout and mixed a user's scalar penalty across members (test
errors 3.8 points off their solo runs, every member logging the same penalty)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from conftest import compose_config
from inprocess import run_main
from omegaconf import OmegaConf, open_dict

from reglab import stacking
from reglab.classifier import build_model
from reglab.member import Job
from reglab.models.dropout import RetentionDropout
from reglab.regularizers import SELECTION
from reglab.run import run_stack
from reglab.validation import ConfigError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
USER_CONF, USER_CODE = FIXTURES / "user_conf", FIXTURES / "user_code"
SEARCHPATH = f"hydra.searchpath=[file://{USER_CONF}]"
COMMON = [
    SEARCHPATH,
    "model=resnet_tiny",
    "regularizer=my_penalty",
    "data=digits",
    "trainer.max_steps=100",
    "trainer.deterministic=true",
    "threads=1",
    "probe_size=0",
    "checkpoint.keep=true",
    "trainer.enable_progress_bar=false",
]
POINTS = {f"seed={s},lam={lam}": [f"seed={s}", f"regularizer.lam={lam}"]
          for s in (0, 1) for lam in ("1e-4", "1e-3")}  # fmt: skip


@pytest.fixture(autouse=True)
def _user_code(monkeypatch):
    monkeypatch.syspath_prepend(str(USER_CODE))


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-12))


def _penalties(run_dir: Path) -> list[float]:
    """The member's logged ``train/penalty``, one per epoch (its own CSV logger)."""
    with (run_dir / "csv" / "metrics.csv").open() as f:
        return [float(r["train/penalty"]) for r in csv.DictReader(f) if r.get("train/penalty")]


@pytest.mark.slow
def test_a_users_residual_cnn_and_penalty_stack_as_their_solo_runs(tmp_path, data_dir):
    """2 seeds × 2 λ of a user's scalar penalty as one 4-member stack, against each job
    run alone: test error within 0.2 points, weights within 1e-4 relative (measured
    4e-6 after 150 steps), and each member logs its own penalty, the solo run's."""
    jobs = {n: Job(compose_config(*COMMON, *o), tmp_path / "stack" / n, o)
            for n, o in POINTS.items()}  # fmt: skip
    stacked = dict(zip(POINTS, run_stack(list(jobs.values())), strict=True))
    for name, summary in stacked.items():
        assert summary["status"] == "completed", (name, summary.get("error"))
        assert summary["stack"]["size"] == 4
    for name, job in jobs.items():
        solo_dir = tmp_path / "solo" / name
        (alone,) = run_stack([Job(compose_config(*COMMON, *POINTS[name]), solo_dir)])
        assert alone["status"] == "completed", alone.get("error")
        assert alone["stack"]["size"] == 1
        assert stacked[name]["metrics"]["test_error"] == pytest.approx(
            alone["metrics"]["test_error"], abs=0.2
        ), name
        mine, theirs = _weights(job.out_dir), _weights(solo_dir)
        assert any(".blocks.1.conv2." in k for k in theirs)  # the user's architecture
        for key, value in theirs.items():
            assert _rel(mine[key], value) < 1e-4, (name, key)
        assert _penalties(job.out_dir) == pytest.approx(_penalties(solo_dir), rel=1e-4), name
    # the penalty follows each member's λ (the old engine logged one value for all)
    first = {name: _penalties(job.out_dir)[0] for name, job in jobs.items()}
    for s in (0, 1):
        low, high = first[f"seed={s},lam=1e-4"], first[f"seed={s},lam=1e-3"]
        assert 3 < high / low < 10.5, (s, low, high)
    assert len({round(v, 6) for v in first.values()}) == 4, first


def test_a_users_nn_dropout_trains_with_reglabs_masks():
    """nn.Dropout(drop) becomes reglab's RetentionDropout keeping units with 1 − drop."""
    cfg = compose_config(*COMMON, "model.drop=0.3")
    model = build_model(cfg, (1, 8, 8), 10)
    assert isinstance(model.drop, RetentionDropout)
    assert float(model.drop.p) == pytest.approx(0.7)
    assert not any(isinstance(m, torch.nn.Dropout) for m in model.modules())
    assert model.head.out_features == 10 and model.stem[0].in_channels == 1  # filled in


def test_reglabs_dropout_for_a_model_without_a_dropout_argument_is_refused():
    """dropout=hidden asks for a p_hidden that ResNetTiny cannot take: one line, no silent
    training without dropout."""
    cfg = compose_config(*COMMON, "dropout=hidden")
    with pytest.raises(ConfigError, match=r"^dropout\.p_hidden=0\.5: ResNetTiny takes no dropout"):
        build_model(cfg, (1, 8, 8), 10)


def test_a_penalty_that_cannot_run_per_member_is_refused_naming_it(tmp_path, data_dir):
    """MaxPenalty calls float() on a tensor: every member is refused before a step."""
    overrides = [*COMMON, "regularizer=max_penalty", "trainer.max_steps=5"]
    jobs = [Job(compose_config(*overrides, f"regularizer.lam={lam}"), tmp_path / lam)
            for lam in ("1e-4", "1e-3")]  # fmt: skip
    for summary, job in zip(run_stack(jobs), jobs, strict=True):
        assert summary["status"] == "failed"
        error = summary["error"]
        assert error.startswith("regularizer MaxPenalty.penalty: cannot be applied per member")
        assert "\n" not in error
        assert not (job.out_dir / "model.pt").exists()
        assert not (job.out_dir / "checkpoints" / "last.ckpt").exists()


def test_a_users_strengths_stack_and_its_kind_does_not():
    """Every number under ``regularizer`` but the selection flags is a stackable strength."""
    assert stacking.REGULARIZER_SELECTION == SELECTION

    def key(*overrides: str) -> str:
        cfg = compose_config(*COMMON, *overrides)
        with open_dict(cfg):
            cfg.pop("logger")  # its paths are the job's, from Hydra's runtime
        return stacking.stack_key(OmegaConf.to_container(cfg, resolve=True))

    assert key("regularizer.lam=0.5", "seed=3") == key()
    assert key("+regularizer.include_biases=true") != key()
    assert key("regularizer=l2") != key()


@pytest.mark.slow
def test_a_model_that_cannot_stack_is_refused_in_one_line(tmp_path, data_dir):
    """NoisyNet branches on ``.item()`` in its forward: the CLI (in this process, the user's
    code on the path) names it and says why in one ``reglab:`` line on stderr, no
    traceback, exit status 2."""
    result = run_main(
        SEARCHPATH, "model=noisy", "data=digits", "trainer.max_steps=5", "threads=1",
        "trainer.enable_progress_bar=false", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("reglab: error: NoisyNet: cannot run per member"), lines[0]
    assert ".item()" in lines[0]
