"""Open the built site in headless Chromium and check what a reader would get.

The site in ``site/`` (written by ``mkdocs build``) is served on a free local port and every
page in :data:`PAGES` is opened in Chromium, driven through the DevTools protocol by
Playwright (the system's Chromium, no browser download). On each page:

* every ``<img>`` has loaded (``complete`` and ``naturalWidth > 0``);
* every same-origin link resolves to HTTP 200 (each distinct URL is fetched once);
* the console shows no error and the page raises no uncaught exception;
* no request leaves the machine: fonts, scripts and API calls from other hosts all fail the
  check (the browser cannot resolve any other host, so nothing is sent either way);
* on the pages of :data:`MATH_PAGES`, MathJax has typeset the TeX;
* a full-page screenshot is saved in ``site-screenshots/``.

On the home page it also switches the light/dark palette and runs a search.

    python tools/browser_check.py                # check site/
    python tools/browser_check.py --page results/  # check other pages
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

ROOT = Path(__file__).resolve().parents[1]

# The pages a reader is most likely to open: the home page, the essay's overview and two of
# its sections (figures drawn from records, code hidden), method tutorials of each system and
# the results page built from the records.
PAGES = (
    "index.html",
    "essay/",
    "essay/essay_1_zooming_in/",
    "essay/essay_4_circuit_map/",
    "essay/essay_5_self_report/",
    "tutorials/symbiosis_normal/",
    "tutorials/transfer_leaderboard/",
    "tutorials/circuits_4_discovery_and_export/",
    "tutorials/selfreport_3_heads/",
    "results/",
    "performance/",
)
# Pages whose prose holds TeX: MathJax must have typeset it.
MATH_PAGES = ("essay/essay_4_circuit_map/", "essay/essay_5_self_report/")
SEARCH_QUERY = "symbiote"
# Debian's Chromium first; other Chromium-family browsers speak the same protocol.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_MS = 30_000


@dataclass
class Check:
    """The outcome of one check on one page."""

    page: str
    name: str
    problems: list[str] = field(default_factory=list)
    detail: str = ""

    @property
    def passed(self) -> bool:
        return not self.problems


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002  (the base class's signature)
        pass


def serve(site: Path) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``site`` on a free port of 127.0.0.1 from a daemon thread; return its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def link_status(url: str) -> int:
    """The final HTTP status of ``url`` after redirects (0 when the server cannot be reached)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def page_file(site: Path, page: str) -> Path | None:
    """The file that serves ``page``, or ``None`` when the build did not write it."""
    path = site / page
    if page.endswith("/") or path.is_dir():
        path = path / "index.html"
    return path if path.is_file() else None


def screenshot_name(page: str, suffix: str = "") -> str:
    stem = page.strip("/").removesuffix(".html").replace("/", "-") or "index"
    return f"{stem}{suffix}.png"


# Lazy images load only near the viewport: make them eager, then wait for every image.
WAIT_FOR_IMAGES = """async () => {
  const images = [...document.images];
  for (const image of images) image.loading = "eager";
  await Promise.all(images.map((image) => image.complete ? null : new Promise((done) => {
    image.addEventListener("load", done, {once: true});
    image.addEventListener("error", done, {once: true});
    setTimeout(done, 10000);
  })));
  return images.map((image) => ({src: image.getAttribute("src") || "", complete: image.complete,
                                 width: image.naturalWidth}));
}"""


def check_images(page, name: str) -> Check:
    images = page.evaluate(WAIT_FOR_IMAGES)
    broken = [i["src"][:80] or "(empty src)" for i in images if not (i["complete"] and i["width"])]
    return Check(name, "images load", [f"not loaded: {src}" for src in broken],
                 f"{len(images) - len(broken)} of {len(images)} loaded")


TYPESET_MATH = """async () => {
  if (!window.MathJax || !window.MathJax.startup) return -1;
  await window.MathJax.startup.promise;
  return document.querySelectorAll("mjx-container svg").length;
}"""


def check_math(page, name: str) -> Check:
    """MathJax (served from this site) has turned the page's TeX into SVG."""
    count = page.evaluate(TYPESET_MATH)
    check = Check(name, "math renders", detail=f"{count} formulas typeset")
    if count < 0:
        check.problems.append("MathJax did not load")
    elif count == 0:
        check.problems.append("no formula was typeset")
    return check


def check_palette(page, name: str, shots: Path) -> Check:
    """The header's palette toggle switches light -> dark -> light (dark screenshot in between).

    The choice is stored for the whole site, so it is switched back for the pages after this one.
    """
    check = Check(name, "palette toggle")
    scheme = "document.body.getAttribute('data-md-color-scheme')"
    toggle = page.locator("form[data-md-component=palette] label:visible")
    seen = [page.evaluate(scheme)]
    for _ in range(2):
        if toggle.count() != 1:
            check.problems.append(f"{toggle.count()} visible palette toggles in the header")
            return check
        toggle.click()
        page.wait_for_timeout(300)  # let the transition finish
        seen.append(page.evaluate(scheme))
        if len(seen) == 2:
            page.screenshot(path=shots / screenshot_name(name, "-dark"))
    check.detail = " -> ".join(map(str, seen))
    if seen != ["default", "slate", "default"]:
        check.problems.append(f"expected default -> slate -> default, saw {check.detail}")
    return check


def check_search(page, name: str) -> Check:
    """Typing a query into the search box lists results."""
    check = Check(name, f"search {SEARCH_QUERY!r}")
    opener = page.locator("label.md-header__button[for=__search]:visible")  # narrow screens
    if opener.count():
        opener.first.click()
    box = page.locator("input.md-search__input")
    if not box.is_visible():
        check.problems.append("no visible search box")
        return check
    box.click()
    box.press_sequentially(SEARCH_QUERY, delay=20)
    try:
        page.wait_for_selector(".md-search-result__item", timeout=10_000)
    except Exception:  # noqa: BLE001  (Playwright's timeout error; reported as a failure)
        meta = page.locator(".md-search-result__meta").inner_text()
        check.problems.append(f"no results within 10 s (the result box says {meta!r})")
        return check
    count = page.locator(".md-search-result__item").count()
    check.detail = f"{count} results ({page.locator('.md-search-result__meta').inner_text()})"
    page.keyboard.press("Escape")
    return check


def check_footer(page, name: str) -> Check:
    """The footer names the profile the site was built with (quick or full)."""
    footer = page.inner_text(".md-copyright") if page.query_selector(".md-copyright") else ""
    found = next((p for p in ("quick", "full") if f"{p} profile" in footer), None)
    return Check(name, "footer names the build's profile",
                 [] if found else [f"footer reads {footer.strip()[:120]!r}"], found or "")


def visit(context, base: str, name: str, shots: Path, home: bool) -> tuple[list[Check], set[str]]:
    """Open one page, run its checks and save its screenshot; return the checks and its links."""
    origin = urlsplit(base).netloc
    outside: list[str] = []  # requests to any host but the local server
    console: list[str] = []
    checks: list[Check] = []
    links: set[str] = set()

    def on_request(request) -> None:
        url = urlsplit(request.url)
        if url.scheme in ("http", "https", "ws", "wss") and url.netloc != origin:
            outside.append(request.url)

    def on_console(message) -> None:
        if message.type == "error":
            where = message.location.get("url", "")
            console.append(f"{message.text[:200]}" + (f" ({where[:100]})" if where else ""))

    page = context.new_page()
    page.on("request", on_request)
    page.on("console", on_console)
    page.on("pageerror", lambda error: console.append(f"uncaught: {error}"[:300]))
    try:
        response = page.goto(base + name, wait_until="load", timeout=TIMEOUT_MS)
        status = response.status if response else 0
        checks.append(Check(name, "page opens", [] if status == 200 else [f"HTTP {status}"],
                            f"HTTP {status}"))
        checks.append(check_images(page, name))
        if name in MATH_PAGES:
            checks.append(check_math(page, name))
        for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
            url = urldefrag(href).url
            if urlsplit(url).netloc == origin:
                links.add(url)
        page.screenshot(path=shots / screenshot_name(name), full_page=True)
        if home:
            checks.append(check_palette(page, name, shots))
            checks.append(check_search(page, name))
            checks.append(check_footer(page, name))
        page.wait_for_timeout(200)  # let late console messages arrive
    except Exception as error:  # noqa: BLE001  (a browser failure is a failed check, not a crash)
        checks.append(Check(name, "page runs", [f"{type(error).__name__}: {error}"[:300]]))
    finally:
        page.close()
    by_host: dict[str, list[str]] = {}
    for url in outside:
        by_host.setdefault(urlsplit(url).netloc, []).append(url)
    checks.append(Check(name, "no outside requests",
                        [f"{host}: {len(urls)} request{'s' * (len(urls) > 1)}, e.g. {urls[0][:100]}"
                         for host, urls in by_host.items()]))
    # the failed loads of blocked outside requests are reported above, not twice
    checks.append(Check(name, "no console errors", [m for m in console if not any(
        m.endswith(f"({url[:100]})") for url in outside)]))
    return checks, links


def run(site: Path, pages: list[str], shots: Path, chromium: str) -> list[Check]:
    """Serve ``site``, visit every page in Chromium, then fetch every internal link once."""
    from playwright.sync_api import sync_playwright

    server, base = serve(site)
    checks: list[Check] = []
    links: dict[str, set[str]] = {}  # page -> the internal URLs it links to
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, headless=True,
                # Only the local server resolves, so a stray request cannot leave the machine.
                args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                      "--no-proxy-server"],
            )
            context = browser.new_context(viewport={"width": 1280, "height": 900},
                                          color_scheme="light")
            for i, name in enumerate(pages):
                if page_file(site, name) is None:
                    checks.append(Check(name, "page exists", [f"site/{name} was not built"]))
                    continue
                page_checks, links[name] = visit(context, base, name, shots, home=i == 0)
                checks += page_checks
            browser.close()
        statuses = {url: link_status(url) for url in sorted(set().union(*links.values()))}
        for name, own in links.items():
            checks.append(Check(name, "internal links resolve",
                                [f"HTTP {statuses[u]}: {u}" for u in sorted(own)
                                 if statuses[u] != 200], f"{len(own)} distinct links"))
    finally:
        server.shutdown()
    return checks


def report(checks: list[Check], seconds: float) -> bool:
    """Print one line per check (problems indented below) and the totals; True if all passed."""
    for page in dict.fromkeys(c.page for c in checks):
        print(page)
        for c in (c for c in checks if c.page == page):
            note = f" ({c.detail})" if c.detail and c.passed else ""
            print(f"  {'PASS' if c.passed else 'FAIL'}  {c.name}{note}")
            for problem in c.problems:
                print(f"          {problem}")
    failed = sum(not c.passed for c in checks)
    verdict = "FAILED" if failed else "passed"
    print(f"browser check {verdict}: {len(checks) - failed} passed, {failed} failed "
          f"in {seconds:.1f} s")
    return not failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "site", help="the built site")
    parser.add_argument("--page", action="append", dest="pages",
                        help="a page to check, relative to the site (repeatable; default: "
                             "the pages in PAGES, the first one also gets the palette and search)")
    parser.add_argument("--screenshots", type=Path, default=ROOT / "site-screenshots")
    parser.add_argument("--chromium", help="the browser executable (default: the first of "
                        f"{', '.join(BROWSERS)} on the PATH)")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        print(f"no built site in {args.site}: run `make docs` first", file=sys.stderr)
        return 2
    chromium = args.chromium or next(filter(None, map(shutil.which, BROWSERS)), None)
    if chromium is None or not Path(chromium).is_file():
        print(f"no browser found ({args.chromium or ', '.join(BROWSERS)}): install Chromium "
              "(Debian: apt-get install chromium) or pass --chromium", file=sys.stderr)
        return 2
    args.screenshots.mkdir(parents=True, exist_ok=True)
    for old in args.screenshots.glob("*.png"):  # no stale screenshot from an earlier run
        old.unlink()
    started = time.perf_counter()
    checks = run(args.site, args.pages or list(PAGES), args.screenshots, chromium)
    passed = report(checks, time.perf_counter() - started)
    print(f"screenshots in {args.screenshots}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
