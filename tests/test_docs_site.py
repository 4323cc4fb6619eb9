"""The documentation site in a real browser: ``mkdocs build --strict`` into a temporary folder,
served on 127.0.0.1, and every page rendered in headless Chromium (the DevTools client of
tests/test_browser_dashboard.py). Checks that every internal link of every page (each ``<a href>``
within the site, its ``#anchor`` included) reaches a page and a heading that exist, that no page
requests anything from outside the machine, and that search works offline: the search index is
built and typing "confidence" into the search box lists hits. Skipped, with the reason, when
mkdocs (the ``docs`` extra) or Chromium is missing."""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_browser_dashboard import DevTools, chromium

ROOT = Path(__file__).resolve().parents[1]

LINKS = """JSON.stringify({
  title: document.title,
  h1: document.querySelector('h1') ? document.querySelector('h1').textContent : null,
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  ids: [...document.querySelectorAll('[id]')].map(e => e.id),
})"""

SEARCH = """(() => {
  const items = [...document.querySelectorAll('.md-search-result__item a')].map(a => a.href);
  const meta = document.querySelector('.md-search-result__meta');
  return JSON.stringify({items, meta: meta ? meta.textContent : null});
})()"""


TYPE = """(() => {
  const box = document.querySelector('.md-search__input');
  box.focus();
  box.value = 'confidence';
  for (const kind of ['input', 'keyup']) box.dispatchEvent(new Event(kind, {bubbles: true}));
})()"""


def need_mkdocs() -> None:
    for module, what in (
        ("mkdocs", "mkdocs"),
        ("material", "mkdocs-material"),
        ("mkdocstrings", "mkdocstrings"),
    ):
        try:
            __import__(module)
        except ImportError:
            pytest.skip(f"{what} is not installed: pip install -c constraints/lock.txt -e '.[docs]'")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[Path, str]]:
    """The built site and the URL it is served at."""
    need_mkdocs()
    out = tmp_path_factory.mktemp("docs") / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    handler = functools.partial(QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield out, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[DevTools]:
    binary = chromium()
    need_mkdocs()
    tools = DevTools(binary, tmp_path_factory.mktemp("profile"))
    try:
        yield tools
    finally:
        tools.close()


def open_page(tools: DevTools, url: str) -> tuple[str, str, dict]:
    """Open ``url`` in a new tab; its target id, its session, and the page's links and ids."""
    target = tools.send("Target.createTarget", url="about:blank")["targetId"]
    session = tools.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Network"):
        tools.send(f"{domain}.enable", session)
    tools.send("Page.navigate", session, url=url)
    tools.wait_for("Page.loadEventFired")
    tools.drain(0.2)
    found = json.loads(
        tools.send("Runtime.evaluate", session, expression=LINKS, returnByValue=True)["result"]["value"]
    )
    return target, session, found


def pages(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out).parent).replace(".", "") for p in out.rglob("index.html"))


def test_every_internal_link_reaches_a_page_and_heading_that_exist(site, browser):
    out, base = site
    found_pages = pages(out)
    assert len(found_pages) >= 12, found_pages
    seen: dict[str, set[str]] = {}  # page URL -> its element ids
    links: list[tuple[str, str]] = []
    for page in found_pages:
        url = urllib.parse.urljoin(base, page + "/" if page else "")
        target, _, found = open_page(browser, url)
        assert found["h1"], f"{url}: no heading"
        seen[url] = set(found["ids"])
        links += [(url, href) for href in found["links"]]
        browser.send("Target.closeTarget", targetId=target)
    requests = [
        e["params"]["request"]["url"]
        for e in browser.events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    outside = [u for u in requests if not u.startswith((base, "data:", "blob:", "about:"))]
    assert not outside, f"the site requested from outside the machine: {outside[:5]}"
    internal = [(page, href) for page, href in links if href.startswith(base)]
    assert len(internal) > 100, len(internal)
    broken = []
    for page, href in internal:
        target, _, fragment = href.partition("#")
        path = out / urllib.parse.unquote(target[len(base) :])
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file():
            broken.append(f"{page} -> {href} (no such file)")
        elif fragment and path.name == "index.html":
            ids = seen.get(target)
            if ids is None:
                continue  # a file that is not a page (an image, a download)
            if urllib.parse.unquote(fragment) not in ids:
                broken.append(f"{page} -> {href} (no such heading)")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:20])


def test_search_works_offline(site, browser):
    out, base = site
    index = json.loads((out / "search" / "search_index.json").read_text(encoding="utf-8"))
    assert any("confidence" in doc["text"] for doc in index["docs"])
    _, session, _ = open_page(browser, base)

    def probe() -> dict:
        reply = browser.send("Runtime.evaluate", session, expression=SEARCH, returnByValue=True)
        return json.loads(reply["result"]["value"])

    # the search worker loads the index after the page: type once it says it is ready, and type
    # again (as a user would) if a slow machine dropped the first keystrokes
    deadline, result = time.monotonic() + 60, probe()
    while time.monotonic() < deadline and (result["meta"] or "").startswith("Initializing"):
        time.sleep(0.25)
        result = probe()
    typed = 0.0
    while time.monotonic() < deadline and not result["items"]:
        if time.monotonic() - typed > 5:
            browser.send("Page.bringToFront", session)  # keystrokes go to the tab in front
            browser.send("Runtime.evaluate", session, expression=TYPE)
            typed = time.monotonic()
        time.sleep(0.25)
        result = probe()
    assert result["items"], f"no search results for 'confidence' (meta: {result['meta']!r})"
    assert all(item.startswith(base) for item in result["items"]), result["items"][:5]
    assert any("statistics" in item for item in result["items"]), result["items"][:10]
