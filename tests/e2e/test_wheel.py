"""The built wheel works on its own: configs, launcher plugin and CLI from a fresh venv.

The wheel is built from a copy of the sources (no race on the checkout's ``build/``) and
installed with ``--no-deps --no-index`` into a new virtual environment outside the
checkout; a ``.pth`` file lends it the dependencies installed in this environment (only
their folder: this environment's editable-install hook is not run there). The editable
install is what every other test uses; :func:`test_the_editable_install_reads_conf_itself`
checks that it still reads the top-level ``conf/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import CONF, DATA_DIR, ROOT
from inprocess import run_main

#: What ``pip install .`` reads from the checkout.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "conf", "src")
#: A user's own config folder, added with ``hydra.searchpath``.
USER_MODEL = "defaults:\n  - mlp\n  - _self_\nhidden: [24, 12]\n"
USER_EXPERIMENT = """# @package _global_
defaults:
  - override /model: my_mlp
name: my_sweep
hydra:
  sweeper:
    params:
      seed: 0,1
"""

# Run with -S (no site, so no editable-install hook): only the unpacked wheel and the
# environment's installed packages are on the path.
PLUGIN_PROBE = """
import sys
sys.path[:0] = [WHEEL, SITE]
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
import reglab
found = {p.__name__: p for p in Plugins.instance().discover(Launcher)}
found = {name: sys.modules[p.__module__].__file__ for name, p in found.items()}
print(reglab.__file__)
print(found["StackedLauncher"])
print("torch" in sys.modules)
"""

# Run by the fresh venv's python: compose one config per option of every group, from the
# config folder the CLI uses (reglab.train.CONFIG_DIR).
COMPOSE_PROBE = """
import json, sys
from hydra import compose, initialize_config_dir
import reglab, reglab.train
options = json.loads(sys.argv[1])
failed = {}
with initialize_config_dir(config_dir=reglab.train.CONFIG_DIR, version_base="1.3"):
    for overrides in options:
        try:
            compose("config", overrides=overrides, return_hydra_config=True)
        except Exception as error:
            failed[" ".join(overrides)] = f"{type(error).__name__}: {error}"
print(json.dumps({"reglab": reglab.__file__, "conf": reglab.train.CONFIG_DIR,
                  "composed": len(options) - len(failed), "failed": failed}))
"""


def _defaults(path: Path) -> set[str]:
    """The groups a config's defaults list selects (``/group`` or ``group``)."""
    entries = (yaml.safe_load(path.read_text()) or {}).get("defaults") or []
    return {str(k).lstrip("/") for e in entries if isinstance(e, dict) for k in e}


def _options() -> list[list[str]]:
    """``group=option`` for every option file of the checkout's conf/ (a group that only an
    experiment selects, with that experiment), and every experiment at every scale."""
    out = []
    top = _defaults(CONF / "config.yaml")
    hosts = {g: f"experiment={e.stem}" for e in (CONF / "experiment").glob("*.yaml")
             for g in _defaults(e)}  # fmt: skip
    for group in sorted(p for p in CONF.iterdir() if p.is_dir()):
        if group.name in ("experiment", "scale"):
            continue  # below: each experiment at each scale
        base = [] if group.name in top else [hosts.get(group.name, "")]
        options = sorted(f.stem for f in group.glob("*.yaml"))
        out += [[*filter(None, base), f"{group.name}={option}"] for option in options]
    scales = sorted(f.stem for f in (CONF / "scale").glob("*.yaml"))
    for experiment in sorted((CONF / "experiment").glob("*.yaml")):
        out += [[f"experiment={experiment.stem}", f"scale={s}"] for s in scales]
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``pip wheel .`` builds from (a copy of) this checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in SOURCES:
        if (ROOT / name).is_dir():  # symlinks stay links: src/reglab/conf -> ../../conf
            shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=skip)
        else:
            shutil.copy2(ROOT / name, src / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(tmp / "dist"), str(src)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (whl,) = (tmp / "dist").glob("reglab-*.whl")
    return whl


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the checkout with the wheel installed, offline."""
    root = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    ours = sysconfig.get_paths()
    lent = dict.fromkeys([ours["purelib"], ours["platlib"]])  # after the venv's own
    (Path(site) / "reglab-deps.pth").write_text("".join(f"{p}\n" for p in lent))
    installed = subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
         "--disable-pip-version-check", "-q", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    return root


def _env(tmp_path: Path) -> dict[str, str]:
    """A user's environment: no PYTHONPATH into the checkout, data and logs set."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return env | {"REGLAB_DATA_DIR": str(DATA_DIR), "REGLAB_LOG_DIR": str(tmp_path / "logs")}


def _user_conf(tmp_path: Path) -> Path:
    """A user's config folder: a model and an experiment of their own."""
    user = tmp_path / "my_conf"
    (user / "model").mkdir(parents=True)
    (user / "experiment").mkdir()
    (user / "model" / "my_mlp.yaml").write_text(USER_MODEL)
    (user / "experiment" / "my_sweep.yaml").write_text(USER_EXPERIMENT)
    return user


@pytest.mark.slow
def test_the_wheel_ships_configs_launcher_license(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {f"reglab/conf/{p.relative_to(CONF)}" for p in CONF.rglob("*.yaml")}
    assert len(configs) > 50 and configs <= names, sorted(configs - names)[:5]
    src = ROOT / "src"  # every file of the packages, data included (conf/ through its link)
    files = {
        os.path.relpath(os.path.join(folder, name), src)
        for top in ("reglab", "hydra_plugins")
        for folder, _, names in os.walk(src / top, followlinks=True)
        for name in names
        if "__pycache__" not in folder
    }
    assert len(files) > len(configs)
    assert files - names == set(), "not in the wheel (package-data in pyproject.toml?)"
    assert "hydra_plugins/reglab_stacked_launcher/stacked_launcher.py" in names
    assert "hydra_plugins/__init__.py" not in names  # a namespace package, shared
    assert "reglab-0.1.0.dist-info/licenses/LICENSE" in names
    assert not [n for n in names if n.startswith(("scripts/", "tests/", "conf/"))]
    meta = zipfile.ZipFile(wheel).read("reglab-0.1.0.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in meta
    assert "Requires-Dist: torch<3,>=2.2" in meta


@pytest.mark.slow
def test_hydra_finds_the_launcher_plugin_of_the_wheel(wheel, tmp_path):
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(wheel).extractall(unpacked)
    site = sysconfig.get_paths()["purelib"]
    code = PLUGIN_PROBE.replace("WHEEL", repr(str(unpacked))).replace("SITE", repr(site))
    probe = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    location, launcher, torch_loaded = probe.stdout.split()
    assert location.startswith(str(unpacked)) and launcher.startswith(str(unpacked))
    assert torch_loaded == "False"  # Hydra imports every plugin at start: no torch there


@pytest.mark.slow
def test_the_installed_wheel_composes_every_option_from_its_own_configs(venv, tmp_path):
    options = _options()
    probe = subprocess.run(
        [venv / "bin" / "python", "-c", COMPOSE_PROBE, json.dumps(options)],
        capture_output=True, text=True, cwd=tmp_path, env=_env(tmp_path), timeout=300,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-3000:]
    found = json.loads(probe.stdout.splitlines()[-1])
    site = str(venv.resolve())
    assert found["reglab"].startswith(site) and found["conf"].startswith(site), found
    assert not Path(found["conf"]).is_symlink()  # real files in the venv, not a link back
    assert found["failed"] == {}
    assert found["composed"] == len(options) > 60


@pytest.mark.slow
def test_the_installed_reglab_train_runs_outside_the_checkout(venv, tmp_path, data_dir):
    env = _env(tmp_path)
    run = subprocess.run(
        [venv / "bin" / "reglab-train", "trainer.max_steps=20", f"hydra.run.dir={tmp_path}/run"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["metrics"]["steps"] == 20
    # A user's own config folder on Hydra's search path composes with the shipped ones.
    user = f"hydra.searchpath=[file://{_user_conf(tmp_path)}]"
    shown = subprocess.run(
        [venv / "bin" / "reglab-train", user, "experiment=my_sweep", "--cfg", "job"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "name: my_sweep" in shown.stdout and "- 24" in shown.stdout, shown.stdout
    # reglab-report --illustrate's programs ship in the package too (tiny: 20 updates)
    drawn = subprocess.run(
        [venv / "bin" / "python", "-m", "reglab.illustrate.proximal_l1", "--steps", "20",
         "--train-size", "200", "--out", str(tmp_path / "ill")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert drawn.returncode == 0, drawn.stderr[-3000:]
    assert (tmp_path / "ill" / "proximal_l1.png").is_file()


@pytest.mark.slow
def test_a_user_config_folder_trains_with_the_editable_install(tmp_path, data_dir):
    """The editable install (this process's reglab-train) with a user's config folder."""
    user = f"hydra.searchpath=[file://{_user_conf(tmp_path)}]"
    run = run_main(user, "model=my_mlp", "trainer.max_steps=5", f"hydra.run.dir={tmp_path}/run",
                   cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["config"]["model"]["hidden"] == [24, 12]
    assert summary["status"] == "completed"


def test_the_editable_install_reads_conf_itself():
    """src/reglab/conf links to the top-level conf/: one copy of the configs."""
    from reglab.train import CONFIG_DIR

    assert Path(CONFIG_DIR).resolve() == CONF.resolve()
    assert (ROOT / "src" / "reglab" / "conf").is_symlink()
