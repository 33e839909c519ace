"""What importing reglab loads and does, each in a fresh interpreter (a subprocess: this
one has loaded everything already): ``import reglab`` stays light and registers no OmegaConf
resolver (the entry point and ``compose`` do), and the data-set table is importable
without torch."""

from __future__ import annotations

import json
import subprocess
import sys

from reglab import resolvers


def _modules_after(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_import_reglab_is_light() -> None:
    """`import reglab` (and reglab.results / history, until called) loads no pandas or torch."""
    code = (
        "import sys, reglab; reglab.results; reglab.history; "
        "print(sorted(m for m in ('pandas', 'torch', 'matplotlib') if m in sys.modules))"
    )
    assert _modules_after(code) == "[]"


def test_the_data_set_table_is_importable_without_torch() -> None:
    """reglab.datasets (and validation, which reads it) load no torch."""
    code = "import sys, reglab.datasets, reglab.validation; print('torch' in sys.modules)"
    assert _modules_after(code) == "False"


LIST_RESOLVERS = (
    "from omegaconf.basecontainer import BaseContainer; import json; "
    "print(json.dumps(sorted(k for k in BaseContainer._resolvers if k.startswith('reglab'))))"
)


def _resolvers_after(code: str) -> list[str]:
    return json.loads(_modules_after(f"{code}\n{LIST_RESOLVERS}").splitlines()[-1])


def test_importing_reglab_has_no_side_effects() -> None:
    """Not even through the modules the refusal path and the report import."""
    assert _resolvers_after("import reglab") == []
    light = "import reglab, reglab.validation, reglab.stacking, reglab.rerun, reglab.jobs"
    assert _resolvers_after(light) == []


def test_the_entry_point_and_compose_register_them() -> None:
    assert _resolvers_after("import reglab.train") == sorted(resolvers.RESOLVERS)
    code = "from reglab.resolvers import compose; compose(['experiment=data_size'])"
    assert _resolvers_after(code) == sorted(resolvers.RESOLVERS)
