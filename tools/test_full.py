"""Run every tutorial on the full profile, on the CPU, with the shipped MNIST subset.

The hosted site is built with ``MECHINTERP_PROFILE=full`` (longer training, more seeds, the
full MNIST on a GPU runner). This runs each tutorial as a plain script under that profile with
the data source overridden to the shipped 5,000-image subset (``MECHINTERP_DATA=mnist-5k``),
two at a time, the essay sections last (they read the other pages' result records); it stops
at the first failure and shows the end of its output. No tutorial needs GPT-2's weights; a
tutorial that did would be skipped here with the reason printed. The last line is
``full profile: N tutorials passed in M min``, which is also appended to
``.cache/mechinterp/test-full.log`` with the date.

    python tools/test_full.py [--only NAME ...] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
ESSAY_PREFIX = "essay_"
NEEDS_GPT2 = ("load_pretrained(", "text_model(")
"""A tutorial that calls one of these needs GPT-2's weights (skipped when they are absent)."""


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(MECHINTERP_PROFILE="full", MECHINTERP_DATA="mnist-5k", MPLBACKEND="Agg",
               MECHINTERP_PROGRESS="0", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               HF_HUB_OFFLINE="1")
    env.setdefault("MECHINTERP_CACHE", str(ROOT / ".cache" / "mechinterp"))
    return env


def _gpt2_available() -> bool:
    from mechinterp.pretrained import load_pretrained

    try:
        load_pretrained("gpt2", device="cpu")
    except Exception:  # noqa: BLE001 - any failure means the weights are not usable here
        return False
    return True


def _run(script: Path, env: dict[str, str]) -> tuple[Path, int, float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, script.name], cwd=TUTORIALS, env=env,
                          capture_output=True, text=True)
    return script, done.returncode, time.perf_counter() - started, done.stdout + done.stderr


def _stage(scripts: list[Path], jobs: int, env: dict[str, str], counter: list[int],
           total: int) -> tuple[Path, str] | None:
    """Run ``scripts``; the first failure (script, output tail) or ``None``."""
    with ThreadPoolExecutor(jobs) as pool:
        pending: set[Future] = {pool.submit(_run, s, env) for s in scripts}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                script, code, seconds, output = future.result()
                counter[0] += 1
                status = "passed" if code == 0 else f"FAILED (exit {code})"
                print(f"{counter[0]}/{total} {status}: {script.stem} ({seconds:.0f} s)",
                      flush=True)
                if code != 0:
                    for other in pending:
                        other.cancel()
                    return script, output[-4000:]
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="tutorial names to run")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    scripts = sorted(TUTORIALS.glob("*.py"))
    if args.only:
        unknown = sorted(set(args.only) - {s.stem for s in scripts})
        if unknown:
            print(f"unknown tutorials {unknown}", file=sys.stderr)
            return 2
        scripts = [s for s in scripts if s.stem in args.only]
    needing = [s for s in scripts if any(c in s.read_text() for c in NEEDS_GPT2)]
    if needing and not _gpt2_available():
        for s in needing:
            print(f"skipped: {s.stem} (needs GPT-2's weights, which are not on this machine)")
        scripts = [s for s in scripts if s not in needing]
    env = _environment()
    started = time.perf_counter()
    counter = [0]
    for stage in ([s for s in scripts if not s.stem.startswith(ESSAY_PREFIX)],
                  [s for s in scripts if s.stem.startswith(ESSAY_PREFIX)]):
        failed = _stage(stage, args.jobs, env, counter, len(scripts))
        if failed:
            print(f"\n--- end of {failed[0].name}'s output ---\n{failed[1]}", file=sys.stderr)
            print(f"full profile: {failed[0].stem} failed after {counter[0] - 1} passed")
            return 1
    minutes = (time.perf_counter() - started) / 60
    line = f"full profile: {len(scripts)} tutorials passed in {minutes:.0f} min"
    log = Path(env["MECHINTERP_CACHE"]) / "test-full.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        f.write(f"{datetime.now():%Y-%m-%d %H:%M} {line}\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
