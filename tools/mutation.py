"""Mutation testing of the modules behind the published metrics (``make mutation``).

The modules, and the fast unit tests that have to kill their mutants, are named in the
``[tool.mutmut]`` section of pyproject.toml (``paths_to_mutate`` and ``tests_dir``). This
script runs mutmut on a staged copy of the repository under ``.cache/mutation`` and prints
one line per module, ``MODULE: K killed / N mutants (P%)``, then ``mutation score: P%`` over
all of them.

Why a staged copy rather than ``mutmut run`` in place:

* mutmut 3 leaves every decorated function and class alone, and most metric functions here
  are decorated (``@torch.no_grad()``, ``@dataclass``, ``@property``). In the staged copy each
  decorator of a target module is applied by an assignment right after the definition
  (``f = torch.no_grad()(f)``), which leaves the behaviour as it was and lets mutmut see the
  function.
* mutmut imports the package from its ``mutants/`` copy of ``paths_to_mutate``, so the whole
  package is staged and every file that is not a target is listed in ``do_not_mutate``.

tests/MUTANTS.md lists, by mutant name, the surviving mutants that are equivalent to the
original (they are left out of the score), and any function declared out of scope (none at
present; its mutants would be left out of the score and counted on a separate line).

Before the per-module lines the script lists the mutants in scope that no test killed, and
a line per module with what was not counted; ``--no-run --survivors`` prints their diffs.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / ".cache" / "mutation"
NOTES = ROOT / "tests" / "MUTANTS.md"
PACKAGE = "src/mechinterp"

KILLED = {1, 3, -24, 24, 152, 255, 36, -9, -11}  # failing tests, crashes and timeouts


# Two fixes to mutmut 3.3.1, applied when it starts: it reads a test's id from
# ``item._nodeid``, which pytest 9 no longer has; and it keeps the duration of a test's last
# phase (the teardown) as the test's duration, so it cannot run the quickest tests of a mutant
# first. Here a test's duration is the sum of its phases.
RUN_MUTMUT = """
import sys
import _pytest.nodes
if not hasattr(_pytest.nodes.Node, "_nodeid"):
    _pytest.nodes.Node._nodeid = property(lambda self: self.nodeid)
import mutmut


class _Summed(dict):
    def __setitem__(self, key, value):
        super().__setitem__(key, self.get(key, 0.0) + value)


mutmut.duration_by_test = _Summed(mutmut.duration_by_test)
from mutmut.__main__ import cli
sys.argv[0] = "mutmut"
cli()
"""


def mutmut_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]


def hoist_decorators(source: str) -> str:
    """``source`` with every decorator of a top-level function, class or method applied by an
    assignment after the top-level statement instead (same objects, visible to mutmut)."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    drop: set[int] = set()
    after: dict[int, list[str]] = {}

    def wrapped(decorators: list[ast.expr], name: str) -> str:
        for line in (d for dec in decorators for d in range(dec.lineno - 1, dec.end_lineno)):
            drop.add(line)
        text = name
        for dec in reversed(decorators):
            text = f"({ast.get_source_segment(source, dec)})({text})"
        return text

    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        assignments = []
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.decorator_list:
                    attr = f"{node.name}.{item.name}"
                    assignments.append(f"{attr} = {wrapped(item.decorator_list, attr)}\n")
        if node.decorator_list:
            assignments.append(f"{node.name} = {wrapped(node.decorator_list, node.name)}\n")
        if assignments:
            after[node.end_lineno] = assignments
    out = []
    for i, line in enumerate(lines, start=1):
        if i - 1 not in drop:
            out.append(line)
        out.extend(after.get(i, []))
    staged = "".join(out)
    ast.parse(staged)
    return staged


def stage(config: dict) -> list[str]:
    """Copy the package, the unit tests and the configuration to STAGE; return the target
    files."""
    targets = [str(Path(p)) for p in config["paths_to_mutate"]]
    for target in targets:
        if not (ROOT / target).is_file():
            raise SystemExit(f"paths_to_mutate names {target}, which is not a file")
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True)
    shutil.copytree(ROOT / PACKAGE, STAGE / PACKAGE,
                    ignore=shutil.ignore_patterns("__pycache__"))
    for target in targets:
        (STAGE / target).write_text(hoist_decorators((ROOT / target).read_text()))
    (STAGE / "tests").mkdir()
    tests = list(config["tests_dir"])
    for name in ["tests/conftest.py", *tests]:
        shutil.copy(ROOT / name, STAGE / name)
    others = sorted(str(p.relative_to(STAGE)) for p in (STAGE / PACKAGE).rglob("*.py")
                    if str(p.relative_to(STAGE)) not in targets)
    pytest_opts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    ini = pytest_opts["ini_options"]
    (STAGE / "pyproject.toml").write_text(
        "[tool.mutmut]\n"
        f"paths_to_mutate = {json.dumps([PACKAGE + '/'])}\n"
        f"do_not_mutate = {json.dumps(others)}\n"
        f"tests_dir = {json.dumps(tests)}\n"
        "also_copy = []\n\n"
        "[tool.pytest.ini_options]\n"
        # each mutant runs pytest afresh in a forked child: skip what only costs time there
        'addopts = "-p no:cacheprovider -p no:unraisableexception -p no:threadexception"\n'
        f"filterwarnings = {json.dumps(ini.get('filterwarnings', []))}\n")
    return targets


def read_notes() -> tuple[dict[str, str], list[str]]:
    """``({mutant name: why equivalent}, [out-of-scope function prefixes])`` from MUTANTS.md:
    bullet lines ``- `name`: reason`` under the headings "Equivalent mutants" and
    "Not in scope"."""
    equivalent: dict[str, str] = {}
    scope: list[str] = []
    section = None
    for line in NOTES.read_text().splitlines():
        if line.startswith("## "):
            title = line[3:].lower()
            section = ("equivalent" if title.startswith("equivalent")
                       else "scope" if title.startswith("not in scope") else None)
            continue
        found = re.match(r"- `([^`]+)`:?\s*(.*)", line)
        if not found or section is None:
            continue
        if section == "equivalent":
            equivalent[found.group(1)] = found.group(2)
        else:
            scope.append(found.group(1))
    return equivalent, scope


def module_of(path: str) -> str:
    return path.removeprefix("src/").removesuffix(".py").replace("/", ".")


def function_of(mutant: str) -> str:
    """``mechinterp.sae.xǁSparseAutoencoderǁencode__mutmut_3`` -> ``mechinterp.sae.SparseAutoencoder.encode``."""
    module, _, name = mutant.rpartition(".")
    name = name.rsplit("__mutmut_", 1)[0]
    name = name[2:] if name.startswith("x_") else name[1:].replace("ǁ", ".").strip(".")
    return f"{module}.{name}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-children", type=int, default=1)
    parser.add_argument("--survivors", metavar="PATTERN", nargs="?", const="*",
                        help="print the diff of every surviving mutant in scope (whose name "
                             "matches PATTERN)")
    parser.add_argument("--no-run", action="store_true",
                        help="report on the last run in .cache/mutation without rerunning")
    args = parser.parse_args()
    config = mutmut_config()
    started = time.monotonic()
    if not args.no_run:
        targets = stage(config)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        run = subprocess.run([sys.executable, "-c", RUN_MUTMUT, "run", "--max-children",
                              str(args.max_children)],
                             cwd=STAGE, env=env, capture_output=True, text=True)
        if run.returncode != 0:
            sys.stdout.write(run.stdout[-5000:])
            sys.stderr.write(run.stderr[-5000:])
            print(f"mutmut run failed with exit code {run.returncode}")
            return 1
    else:
        targets = [str(Path(p)) for p in config["paths_to_mutate"]]

    equivalent, scope = read_notes()
    results: dict[str, dict[str, int | None]] = {}
    for target in targets:
        meta = STAGE / "mutants" / (target + ".meta")
        if not meta.exists():
            print(f"{module_of(target)}: no mutants were recorded ({meta} is missing)")
            return 1
        results[target] = json.loads(meta.read_text())["exit_code_by_key"]

    known = {name for codes in results.values() for name in codes}
    for name in sorted(set(equivalent) - known):
        print(f"warning: MUTANTS.md lists {name}, which no longer exists; renumbered?")

    total_killed = total_counted = 0
    survivors = []
    lines: list[str] = []
    details: list[str] = []
    for target, codes in results.items():
        killed = counted = out_of_scope = excluded = 0
        statuses = Counter()
        for name, code in codes.items():
            if any(function_of(name) == f or function_of(name).startswith(f + ".")
                   for f in scope):
                out_of_scope += 1
                continue
            dead = code in KILLED
            if name in equivalent:
                if dead:
                    print(f"warning: {name} is listed as equivalent but a test kills it")
                else:
                    excluded += 1
                    continue
            counted += 1
            killed += dead
            statuses["killed" if dead else {0: "survived", 33: "no tests", 5: "no tests",
                                            None: "not checked"}.get(code, str(code))] += 1
            if not dead:
                survivors.append((target, name, code))
        total_killed += killed
        total_counted += counted
        pct = 100 * killed / counted if counted else 100.0
        notes = [f"{n} {s}" for s, n in sorted(statuses.items()) if s != "killed"]
        notes += [f"{excluded} equivalent"] if excluded else []
        notes += [f"{out_of_scope} not in scope"] if out_of_scope else []
        lines.append(f"{module_of(target)}: {killed} killed / {counted} mutants ({pct:.1f}%)")
        if notes:
            details.append(f"  {module_of(target)}: {'; '.join(notes)}")

    if args.survivors and survivors:
        from mutmut.__main__ import get_diff_for_mutant  # noqa: PLC0415

        os.chdir(STAGE)
        for target, name, code in survivors:
            if code == 0 and fnmatch.fnmatch(name, args.survivors):
                print(get_diff_for_mutant(name, path=target))
                print()
    elif survivors:
        print("surviving mutants in scope (diffs: python tools/mutation.py --no-run --survivors):")
        for _, name, code in survivors:
            print(f"  {name}" + ("  (no test reaches it)" if code in (5, 33) else ""))

    if details:
        print("not killed or not counted:")
        print(*details, sep="\n")
    if not args.no_run:
        print(f"mutmut took {(time.monotonic() - started) / 60:.1f} minutes")
    for line in lines:
        print(line)
    score = 100 * total_killed / total_counted if total_counted else 100.0
    print(f"mutation score: {score:.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
