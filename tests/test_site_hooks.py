"""The site build's tutorial runner: progress lines, and kernels that start quietly."""

import importlib.util
import logging
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def _hooks():
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "tools" / "mkdocs_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_progress_lines_count_and_estimate(caplog):
    hooks = _hooks()
    todo = [(Path("a.py"), Path("a.ipynb")), (Path("b.py"), Path("b.ipynb"))]
    progress = hooks._Progress(todo, {"a": 100.0}, workers=2)  # b is unknown: a minute
    assert progress.remaining() == 80.0
    with caplog.at_level(logging.INFO, logger="mkdocs.hooks.tutorials"):
        progress.start("a")
        progress.end("a", 90.0)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "tutorial 1/2 started: a (about 100 s)"
    assert lines[1].startswith("tutorial 1/2 finished: a, 90.0 s (elapsed 0:00, about 0:30 left")
    assert progress.remaining() == 30.0


def test_a_tutorial_runs_without_kernel_warnings(tmp_path, capfd):
    hooks = _hooks()
    script = tmp_path / "tiny.py"
    script.write_text("# %% [markdown]\n# # Tiny\n\n# %%\nprint(6 * 7)\n")
    out = tmp_path / "out" / "tiny.ipynb"
    seconds = hooks._execute(script, out, "quick", "cpu")
    assert seconds > 0
    notebook = nbformat.read(out, as_version=4)
    assert notebook.cells[-1].outputs[0]["text"] == "42\n"
    assert "executed during the site build" in notebook.cells[1].source
    assert "without encryption" not in capfd.readouterr().err
