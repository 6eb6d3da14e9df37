"""MkDocs hooks: execute the tutorials once per build and generate the results page.

The tutorials live in ``tutorials/`` as jupytext percent scripts. Before each build this hook
converts every script to a notebook, executes it with ``nbclient`` (from the ``tutorials/``
folder, as ``pytest --nbmake`` does), and hands the executed notebook to mkdocs-jupyter as
``tutorials/<name>.ipynb`` (essay pages as ``essay/<name>.ipynb``, executed after the others
because they read their records), with the script alongside for download. A cell that
raises fails the build. Executed notebooks are cached under the mechinterp cache, keyed by
the tutorial's text, the library's source and the profile (and, for an essay page, the keys
of the tutorials it reads), so ``mkdocs serve`` re-runs only what changed.

After the tutorials have run (they write result records), the results page is generated from
the records.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path

import jupytext
import nbformat
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
LIBRARY = ROOT / "src" / "mechinterp"
log = logging.getLogger("mkdocs.hooks.tutorials")

_generated: dict[str, Path] = {}  # site path -> file on disk
_results_markdown: str = ""
_key_results: str = ""
_images: dict[str, bytes] = {}  # site path -> PNG drawn from the records
KEY_RESULTS_MARK = "<!-- key-results -->"
KEY_RESULTS_IMAGE = "assets/key-results.png"
RESULT_FIGURES = {"transfer-tradeoff.png": "Concept transfer: every method on each model pair"}


def _profile_and_device() -> tuple[str, str]:
    sys.path.insert(0, str(ROOT / "src"))
    from mechinterp.config import get_device, get_profile

    return get_profile().name, str(get_device())


def _cache_root() -> Path:
    from mechinterp.config import cache_dir

    return cache_dir() / "site"


def _library_digest() -> str:
    """The library's source and the data it ships (stored studies, model sidecars)."""
    digest = hashlib.sha256()
    for path in sorted([*LIBRARY.rglob("*.py"), *LIBRARY.rglob("*.json")]):
        digest.update(path.relative_to(LIBRARY).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _notebook_key(script: Path, profile: str, library: str, reads: str = "") -> str:
    """What an executed notebook depends on: its script, the library, the profile, the data
    source and, for an essay page, ``reads`` (the keys of the tutorials whose records it reads)."""
    digest = hashlib.sha256()
    for part in (script.read_bytes(), library.encode(), profile.encode(),
                 os.environ.get("MECHINTERP_DATA", "").encode(), reads.encode(),
                 os.environ.get("MECHINTERP_SEEDS_LIVE", "").encode()):
        digest.update(part)
    return digest.hexdigest()[:16]


def _banner(stem: str, seconds: float, profile: str, device: str) -> nbformat.NotebookNode:
    text = (
        f"*This page was executed during the site build: {seconds:.1f} s on `{device}` with "
        f"the `{profile}` profile.* Download it as a [notebook]({stem}.ipynb) or as a "
        f"[plain script]({stem}.py) (run it with `python {stem}.py`)."
    )
    return nbformat.v4.new_markdown_cell(text)


def _execute(script: Path, out: Path, profile: str, device: str) -> float:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from traitlets.config import Config

    notebook = jupytext.read(script)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    # IPC sockets rather than TCP (where there are Unix sockets), so the kernel has nothing to
    # warn about on every start; the path must be absolute, since the kernel runs elsewhere
    sockets = Path(tempfile.mkdtemp(prefix="mechinterp-kernel-"))
    transport = Config()
    if os.name != "nt":
        transport.KernelManager.transport = "ipc"
        transport.KernelManager.ip = str(sockets / "ipc")
    started = time.perf_counter()
    try:
        client = NotebookClient(notebook, timeout=1800, kernel_name="python3", config=transport,
                                resources={"metadata": {"path": str(TUTORIALS)}})
        client.execute()
    except CellExecutionError as exc:
        raise PluginError(f"tutorial {script.name} failed while executing:\n{exc}") from exc
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    seconds = time.perf_counter() - started
    insert_at = 1 if notebook.cells and notebook.cells[0].cell_type == "markdown" else 0
    notebook.cells.insert(insert_at, _banner(script.stem, seconds, profile, device))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    nbformat.write(notebook, tmp)
    os.replace(tmp, out)
    return seconds


# Seconds each tutorial took in a fresh-clone quick-profile build on a 2-core CPU machine (a
# page that trains a shared model first pays for it; later pages load it). The build
# starts the slowest pages first so that a long page does not start last and hold up the end;
# a tutorial missing here counts as a minute. `make docs` prints the fresh numbers and keeps
# them in <cache>/site/durations.json, which takes precedence over this file.
DURATIONS_FILE = ROOT / "tools" / "tutorial_seconds.json"


def _known_durations() -> dict[str, float]:
    known: dict[str, float] = {}
    for path in (DURATIONS_FILE, _cache_root() / "durations.json"):
        if path.exists():
            known.update(json.loads(path.read_text()))
    return known


def _record_durations(timings: list[tuple[float, str]]) -> None:
    if not timings:
        return
    path = _cache_root() / "durations.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    known.update({Path(name).stem: round(seconds, 1) for seconds, name in timings})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(known.items())), indent=1) + "\n")


# Essay pages read what the method tutorials computed (their checkpoints and result
# records), so they run in a second phase, once every other tutorial has finished; on the
# site they live under essay/ rather than tutorials/.
ESSAY_PREFIX = "essay_"


def _site_folder(stem: str) -> str:
    return "essay" if stem.startswith(ESSAY_PREFIX) else "tutorials"


class _Progress:
    """One log line per tutorial as it starts and as it ends: ``i/N``, the time since the
    build began and an estimate of what remains, from the recorded durations."""

    def __init__(self, todo: list[tuple[Path, Path]], known: dict[str, float], workers: int):
        self.expected = {script.stem: known.get(script.stem, 60.0) for script, _ in todo}
        self.workers, self.total = workers, len(todo)
        self.started: dict[str, float] = {}
        self.finished: set[str] = set()
        self.begun = time.perf_counter()
        self.lock = threading.Lock()

    def remaining(self) -> float:
        """Seconds of work left (not started, plus what running pages are expected to need
        still), spread over the workers."""
        now = time.perf_counter()
        left = sum(max(seconds - (now - self.started[stem]), 0.0) if stem in self.started
                   else seconds for stem, seconds in self.expected.items()
                   if stem not in self.finished)
        return left / self.workers

    @staticmethod
    def _clock(seconds: float) -> str:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"

    def start(self, stem: str) -> None:
        with self.lock:
            self.started[stem] = time.perf_counter()
            log.info("tutorial %d/%d started: %s (about %.0f s)", len(self.started), self.total,
                     stem, self.expected[stem])

    def end(self, stem: str, seconds: float) -> None:
        with self.lock:
            self.finished.add(stem)
            log.info("tutorial %d/%d finished: %s, %.1f s (elapsed %s, about %s left)",
                     len(self.finished), self.total, stem, seconds,
                     self._clock(time.perf_counter() - self.begun),
                     self._clock(self.remaining()))


def _run_phase(todo: list[tuple[Path, Path]], profile: str, device: str, workers: int,
               timings: list[tuple[float, str]], progress: _Progress) -> None:
    def run(script: Path, out: Path) -> float:
        progress.start(script.stem)
        return _execute(script, out, profile, device)

    pool = ThreadPoolExecutor(max_workers=workers)
    futures = {pool.submit(run, script, out): script for script, out in todo}
    try:
        for future in as_completed(futures):
            seconds = future.result()  # re-raises a failed tutorial's PluginError
            timings.append((seconds, futures[future].name))
            progress.end(futures[future].stem, seconds)
    finally:  # on a failure, start nothing new: the build fails as soon as it can
        pool.shutdown(wait=True, cancel_futures=True)


def _execute_all(todo: list[tuple[Path, Path]], profile: str, device: str
                 ) -> list[tuple[float, str]]:
    """Execute notebooks, ``$MECHINTERP_SITE_WORKERS`` (default 2) at a time, slowest first:
    the method tutorials, then the essay pages.

    Each notebook runs in its own kernel process with one torch thread, so two workers use
    both cores of a small machine; shared cache entries are built once under a file lock.
    """
    known = _known_durations()
    todo = sorted(todo, key=lambda item: -known.get(item[0].stem, 60.0))
    workers = max(1, int(os.environ.get("MECHINTERP_SITE_WORKERS", "2")))
    progress = _Progress(todo, known, workers)
    if todo:
        log.info("executing %d tutorials, %d at a time: about %s (min:s) from the durations "
                 "recorded on a 2-core machine; one line as each starts and ends",
                 len(todo), workers, progress._clock(progress.remaining()))
    previous = os.environ.get("MECHINTERP_PROGRESS")
    os.environ["MECHINTERP_PROGRESS"] = "0"  # no progress bars in rendered pages
    timings: list[tuple[float, str]] = []
    try:
        for essay in (False, True):
            phase = [item for item in todo if item[0].stem.startswith(ESSAY_PREFIX) == essay]
            _run_phase(phase, profile, device, workers, timings, progress)
    finally:
        if previous is None:
            os.environ.pop("MECHINTERP_PROGRESS", None)
        else:
            os.environ["MECHINTERP_PROGRESS"] = previous
    return timings


def on_config(config):
    """Say in every page's footer which profile built the site, on what, and when (a quick
    build on an ordinary runner and the full GPU build must not be mistaken for each other)."""
    profile, device = _profile_and_device()
    config["copyright"] = (f"Built with the <code>{profile}</code> profile on {device}, "
                           f"{datetime.now(timezone.utc):%Y-%m-%d}.")
    return config


def on_pre_build(config) -> None:
    """Execute every tutorial (or take it from the cache), then render the results page."""
    global _results_markdown
    profile, device = _profile_and_device()
    library = _library_digest()
    cache = _cache_root() / "notebooks"
    _generated.clear()
    todo = []
    scripts = sorted(TUTORIALS.glob("*.py"),
                     key=lambda s: (s.stem.startswith(ESSAY_PREFIX), s.stem))
    method_keys: list[str] = []  # an essay page is stale whenever a tutorial it reads is
    for script in scripts:
        essay = script.stem.startswith(ESSAY_PREFIX)
        key = _notebook_key(script, profile, library, "".join(method_keys) if essay else "")
        if not essay:
            method_keys.append(key)
        folder = _site_folder(script.stem)
        executed = cache / key / folder / f"{script.stem}.ipynb"
        if executed.exists():
            log.info("tutorial %s: cached", script.name)
        else:
            todo.append((script, executed))
        _generated[f"{folder}/{script.stem}.ipynb"] = executed
        _generated[f"{folder}/{script.stem}/{script.stem}.py"] = script
    timings = _execute_all(todo, profile, device)
    _record_durations(timings)
    for seconds, name in sorted(timings, reverse=True):
        log.info("executed %-50s %6.1f s", name, seconds)
    from mechinterp.dashboard import plot_key_results, render_key_results
    from mechinterp.leaderboards import plot_results_figures, render_results_page
    from mechinterp.results import load_results

    records = load_results(profile=profile)  # this build's profile only
    image = plot_key_results(records)
    _images.clear()
    captions = {}
    if image is not None:
        _images[KEY_RESULTS_IMAGE] = image
        captions["The key results of this build (also on the home page)"] = KEY_RESULTS_IMAGE
    for name, png in plot_results_figures(records).items():
        _images[f"assets/{name}"] = png
        captions[RESULT_FIGURES.get(name, name)] = f"assets/{name}"
    _results_markdown = render_results_page(records, figures=captions)
    global _key_results
    _key_results = render_key_results(records, image=KEY_RESULTS_IMAGE if image else None)


@event_priority(100)  # before mkdocs-jupyter turns notebooks into pages
def on_files(files: Files, config) -> Files:
    """Add the executed notebooks, their scripts and the generated results page."""
    site_dir, urls = config["site_dir"], config["use_directory_urls"]
    for site_path, disk_path in _generated.items():
        if site_path.endswith(".py"):
            files.append(File(disk_path.name, str(disk_path.parent), site_dir, urls,
                              dest_uri=site_path))
        else:  # a real file under <cache>/<key>/<folder>/, so mkdocs-jupyter can wrap it
            files.append(File(site_path, str(disk_path.parents[1]), site_dir, urls))
    files.append(File.generated(config, "results.md", content=_results_markdown))
    for path, png in _images.items():
        files.append(File.generated(config, path, content=png))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Put the key results of this build (table and figure) on the home page."""
    if page.file.src_uri == "index.md" and KEY_RESULTS_MARK in markdown:
        return markdown.replace(KEY_RESULTS_MARK, _key_results)
    return markdown


def on_serve(server, config, builder):
    """Rebuild when a tutorial or the library changes."""
    server.watch(str(TUTORIALS))
    server.watch(str(LIBRARY))
    return server
