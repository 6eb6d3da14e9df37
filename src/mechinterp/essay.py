"""What the essay pages share: the result records of the method tutorials behind them.

Each essay section is a tutorial that reads as prose; its numbers and figures come from the
method tutorials it summarises. During a site build the essay pages run after every method
tutorial (see ``tools/mkdocs_hooks.py``), so :func:`require_result` finds each record written
by the same build. Run on its own, as a plain script, an essay page that finds a record
missing runs the method tutorial that writes it first (which trains what it needs, or loads
it from the checkpoint cache), so a fresh clone can run any page.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from mechinterp.config import get_profile
from mechinterp.errors import DataError
from mechinterp.results import record_path

__all__ = ["require_result", "provenance_note", "TUTORIALS"]

TUTORIALS = Path(__file__).resolve().parents[2] / "tutorials"
"""The tutorials folder of a source checkout."""


def require_result(name: str, tutorial: str, *, timeout: float = 3600) -> dict[str, Any]:
    """The result record ``name`` of the current profile, running ``tutorial`` first if no
    such record exists yet.

    Args:
        name: the record's name (as given to :func:`~mechinterp.results.write_result`).
        tutorial: the stem of the tutorial that writes it, e.g. ``"symbiosis_normal"``.
        timeout: seconds the tutorial may run.

    Returns:
        The whole record: ``metrics``, ``config``, ``seeds`` and its provenance.

    Raises:
        DataError: the tutorial is not in this checkout, fails, runs past ``timeout`` or
            writes no such record.
    """
    path = record_path(name)
    if not path.is_file():
        script = TUTORIALS / f"{tutorial}.py"
        if not script.is_file():
            raise DataError(f"no result record {name!r} for the {get_profile().name!r} profile, "
                            f"and the tutorial that writes it ({script}) is not here; run it "
                            f"from a source checkout, or build the site with 'make docs'")
        env = {**os.environ, "MPLBACKEND": "Agg", "MECHINTERP_PROGRESS": "0"}
        try:
            done = subprocess.run([sys.executable, script.name], cwd=TUTORIALS, env=env,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DataError(f"tutorial {script.name} ran past {timeout:.0f} s while writing record "
                            f"{name!r}; run it on its own to see where it spends its time") from None
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-15:])
            raise DataError(f"tutorial {script.name} failed while writing record {name!r}:\n"
                            f"{tail}")
        if not path.is_file():
            raise DataError(f"tutorial {script.name} ran but wrote no record {name!r} "
                            f"(looked for {path})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"result record {path} is not valid JSON ({exc}); delete it and run "
                        f"tutorials/{tutorial}.py again") from None


def provenance_note(*records: dict[str, Any]) -> str:
    """One line saying where the numbers of a section come from: for each record its title,
    profile, seeds, data source and commit."""
    parts = [f"{r.get('title', r.get('name'))} (profile `{r.get('profile')}`, seeds "
             f"{r.get('seeds')}, data `{r.get('data_source')}`, commit `{r.get('git_commit')}`)"
             for r in records]
    return "*Numbers on this page come from:* " + "; ".join(parts) + "."
