"""Keep ``tutorials/*.ipynb`` in step with the jupytext scripts they are generated from.

The ``.py`` files are the source. ``pytest --nbmake tutorials/`` collects only notebooks, so
each script has a generated, output-free notebook beside it.

    python tools/sync_tutorials.py          # regenerate the notebooks
    python tools/sync_tutorials.py --check  # fail if a notebook is missing or stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


def notebook_from_script(script: Path) -> nbformat.NotebookNode:
    """The notebook a script converts to, with a fixed kernel and no volatile metadata (cell
    tags, such as ``hide-input`` on the essay pages, are kept)."""
    notebook = jupytext.read(script)
    notebook.metadata = {"kernelspec": KERNEL, "language_info": {"name": "python"}}
    for i, cell in enumerate(notebook.cells):
        tags = cell.metadata.get("tags")
        cell.metadata = {"tags": tags} if tags else {}
        cell.id = f"cell-{i:03d}"  # stable ids keep the generated file diff-free
    return notebook


def _cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.cell_type, c.source, tuple(c.metadata.get("tags", ()))) for c in notebook.cells]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    scripts = sorted(TUTORIALS.glob("*.py"))
    stale = []
    for script in scripts:
        target = script.with_suffix(".ipynb")
        wanted = notebook_from_script(script)
        current = nbformat.read(target, as_version=4) if target.exists() else None
        if current is not None and _cells(current) == _cells(wanted):
            continue
        stale.append(target.name)
        if not args.check:
            nbformat.write(wanted, target)
    orphans = [nb.name for nb in TUTORIALS.glob("*.ipynb") if not nb.with_suffix(".py").exists()]
    if args.check and (stale or orphans):
        if stale:
            print(f"stale or missing notebooks: {stale}; run 'make tutorials'", file=sys.stderr)
        if orphans:
            print(f"notebooks without a script: {orphans}; delete them", file=sys.stderr)
        return 1
    if not args.check:
        print(f"{len(stale)} notebook(s) written, {len(scripts) - len(stale)} already in sync")
    return 0


if __name__ == "__main__":
    sys.exit(main())
