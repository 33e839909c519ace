"""reglab.summary owns summary.json: its keys (SCHEMA), the status vocabulary, and the one
writer of failed jobs' summaries, which every path that records a failure goes through."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import reglab
from reglab import summary
from reglab.locks import Owner

SRC = Path(reglab.__file__).resolve().parent
VOCABULARY = {
    summary.COMPLETED, summary.FAILED, summary.DIVERGED, summary.INTERRUPTED, summary.RUNNING,
    summary.FITTED, summary.RUNNING_ELSEWHERE, summary.NO_SUMMARY, summary.UNREADABLE,
    summary.NOT_STARTED,
}  # fmt: skip


def test_the_statuses() -> None:
    assert summary.STATUSES == ("completed", "failed", "diverged", "interrupted")
    assert set(summary.FINAL) < set(summary.STATUSES) and summary.INTERRUPTED not in summary.FINAL
    assert summary.INTERRUPTED in summary.UNFINISHED and summary.COMPLETED not in summary.UNFINISHED
    assert summary.is_elsewhere("running elsewhere (host 12)") and not summary.is_elsewhere(None)


def test_no_module_spells_a_status_itself() -> None:
    """Statuses are summary's constants everywhere else (string literals equal to one of
    them, outside docstrings, are refused)."""
    found = []
    for path in sorted((SRC.parent).rglob("*.py")):
        if path.name == "summary.py" or "egg-info" in str(path):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            constant = isinstance(node, ast.Constant) and node.value in VOCABULARY
            if constant and id(node) not in docstrings:
                found.append(f"{path.relative_to(SRC.parent)}:{node.lineno} {node.value!r}")
    assert not found, found


def test_a_failed_summary_has_the_schema_keys(tmp_path: Path) -> None:
    choices = {"data": "mnist", "hydra/launcher": "basic"}
    written = summary.failed_summary(tmp_path, "boom", ["seed=1"], choices, {"seed": 1})
    assert set(written) <= set(summary.SCHEMA)
    assert written["status"] == summary.FAILED and written["choices"] == {"data": "mnist"}
    assert json.loads((tmp_path / summary.SUMMARY).read_text()) == written
    unwritten = summary.failed_summary(tmp_path / "x", "boom", [], write=False)
    assert "config" not in unwritten and not (tmp_path / "x").exists()


def test_a_job_trained_elsewhere_gets_a_summary_that_says_so(tmp_path: Path) -> None:
    owner = Owner("host", 12, 0.0, None, None)
    skipped = summary.elsewhere_summary(tmp_path, owner, ["seed=1"])
    assert skipped["status"] == "running elsewhere (host 12)" and set(skipped) <= set(
        summary.SCHEMA
    )
    assert "host host pid 12" in skipped["error"] and not (tmp_path / summary.SUMMARY).exists()


def test_every_failure_goes_through_the_one_writer() -> None:
    """Only summary.py builds summaries, and member.py a run's own at its end: no other
    module (the report's tables of statuses aside) builds a dict with a ``status`` of its
    own; a failure's comes from failed_summary."""
    builders = set()
    for path in sorted(p for p in SRC.parent.rglob("*.py") if "report" not in p.parts):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Dict) and any(
                isinstance(k, ast.Constant) and k.value == "status" for k in node.keys
            ):
                builders.add(str(path.relative_to(SRC)))
    assert builders == {"summary.py", "member.py"}
    for name in ("train.py", "lifecycle.py", "locks.py"):
        assert "summary" in (SRC / name).read_text(encoding="utf-8")


def test_a_runs_summary_has_the_schema_keys() -> None:
    """Member.write_summary, the summary of a run that trained, writes SCHEMA's keys."""
    tree = ast.parse((SRC / "member.py").read_text(encoding="utf-8"))
    [method] = [
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "write_summary"
    ]
    keys = set()
    for node in ast.walk(method):
        if isinstance(node, ast.Dict):
            keys |= {k.value for k in node.keys if isinstance(k, ast.Constant)}
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
            keys.add(node.slice.value)  # summary["error"] = ...
    assert {"status", "config", "metrics", "history", "error", "timing"} <= keys
    assert keys <= set(summary.SCHEMA), keys - set(summary.SCHEMA)
