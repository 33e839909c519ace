"""reglab.figures: what the report and the illustrations share, so that neither package
imports the other (checked statically, on every module of both)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import reglab
from reglab import figures

SRC = Path(reglab.__file__).resolve().parent


def _imported(path: Path) -> set[str]:
    """The modules ``path`` imports (``from a import b``: ``a`` and ``a.b``), anywhere in it."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


@pytest.mark.parametrize(("package", "other"), [("report", "illustrate"), ("illustrate", "report")])
def test_report_and_illustrate_do_not_import_each_other(package: str, other: str) -> None:
    files = sorted((SRC / package).rglob("*.py"))
    assert files
    found = {
        f"{path.relative_to(SRC)}: {name}"
        for path in files
        for name in _imported(path)
        if name == f"reglab.{other}" or name.startswith(f"reglab.{other}.")
    }
    assert not found, sorted(found)


def test_the_registry_lists_each_module_once_in_page_order() -> None:
    assert figures.MODULES == ("proximal_l1", "autoencoder")
    for module in figures.MODULES:
        assert (SRC / "illustrate" / f"{module}.py").is_file()
    stems = [stem for stem, _ in figures.ILLUSTRATIONS]
    assert len(stems) == len(set(stems))


def test_the_report_runs_and_shows_the_registry(tmp_path: Path, monkeypatch) -> None:
    """``reglab-report --illustrate`` runs the registry's modules in its order, and the page
    names a missing figure with the module that writes it."""
    import subprocess

    from reglab.report import cli, sections

    ran: list[str] = []

    def fake_run(cmd, **kwargs):
        ran.append(cmd[2])
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(cli.subprocess, "run", fake_run)
    cli.run_illustrations(tmp_path)
    assert ran == [f"reglab.illustrate.{m}" for m in figures.MODULES]
    section = sections.illustrations_section(tmp_path, batchnorm_found=True)
    assert "autoencoder_sparsity (python -m reglab.illustrate.autoencoder)" in section.text
