"""A single run is a stack of one: with dropout off, today's configs give the summary
metrics that reglab gave before stacked training (tests/fixtures/solo_reference.json,
recorded at 021754c with tests/fixtures/record_solo_reference.py).

The runs are replayed with other kernels than those that recorded them: another machine
(this one has AVX-512) and, since then, the member weights' in-major layout (the matrix
products run as NN instead of NT GEMMs), both summing in another order. Training carries
that last-bit difference forward: replayed on 2026-12-01, six of the eight cases agreed
to 1e-5 relative in every metric and two drifted, by at most 9 of 10,000 validation images, 0.5 %
of a training loss of 0.029 (0.06 % of the validation loss) and 4 % of a pre-activation
percentile. So: errors within 0.1 points, losses and activations within 1 % (plus 1e-3),
the probes' percentiles within 5 % (plus 1e-2); a systematic change (inputs, init,
an update rule) moves them far more.

The torch.func engine (issue 19: vmap'd kernels, not the hand-written baddbmm ones) was
replayed on 2026-12-05: seven cases within 2.3e-6 relative in every metric; mlp_bn_l2_adam
(sigmoid + batchnorm + Adam, which amplifies last-bit differences early on) within 0.01
points of final error and 5e-5 relative in losses, but its first evaluation (step 15, at
44.5 % error) 0.12 points off (44.45 vs 44.57: 12 of 10,000 test images; the later five
within 0.04). So the history along the way is held to 0.2 points (measured 0.12, under x2);
the final metrics keep their tolerances.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from inprocess import run_main_ok

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURE = json.loads((FIXTURES / "solo_reference.json").read_text())
ERRORS = ("train_error", "val_error", "test_error")
ERROR_TOLERANCE = 0.1  # percentage points: a few borderline examples (see above)
HISTORY_TOLERANCE = 0.2  # the evaluations along the way, early ones at ~45 % (see above)
#: The evaluation cadence the recorded runs had by default (issue 13 changed the default).
PER_EPOCH = {"trainer.check_val_every_n_epoch": "1", "trainer.val_check_interval": "null"}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(FIXTURE["cases"]))
def test_a_stack_of_one_reproduces_the_recorded_solo_run(tmp_path, data_dir, case):
    expected = FIXTURE["cases"][case]
    overrides = expected["overrides"]
    cadence = [f"{k}={v}" for k, v in PER_EPOCH.items() if not any(f"{k}=" in o for o in overrides)]
    summary = run_main_ok(
        *FIXTURE["common"], *cadence, *overrides, run_dir=tmp_path / case, cwd=tmp_path
    )
    got, want = summary["metrics"], expected["metrics"]
    assert summary["status"] == "completed"
    assert [row["step"] for row in summary["history"]] == expected["history_steps"]
    for key, value in want.items():
        if value is None:
            assert got[key] is None, key
        elif key in ERRORS:
            assert got[key] == pytest.approx(value, abs=ERROR_TOLERANCE), key
        elif key.startswith("probe/"):  # one order statistic of 1,000 values near 0
            assert got[key] == pytest.approx(value, rel=5e-2, abs=1e-2), key
        elif isinstance(value, float) and math.isfinite(value):
            assert got[key] == pytest.approx(value, rel=1e-2, abs=1e-3), key
        else:
            assert got[key] == value, key
    # along the way: a few images either way (one kernel for every K; see above)
    errors = [row.get("test/error") for row in summary["history"]]
    assert errors == pytest.approx(expected["history_test_error"], abs=HISTORY_TOLERANCE)
