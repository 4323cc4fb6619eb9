"""The dashboard in a real browser: headless Chromium, driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: no port, no websocket package), loads the front page and a run page
of a history with passes, failures, undecided verdicts and hostile model output, and checks that
there is no console error, no script and no network request, that the expected elements are
there, and takes a screenshot (``QAGATE_DASHBOARD_SCREENSHOT=docs/dashboard.png`` keeps it).
Skipped, with the reason, when no Chromium is installed (``apt-get install -y chromium``)."""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from qagate import cli
from qagate.store.history import append_run, build_run

EVIL = "<script>alert(1)</script>"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def chromium() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"no Chromium found (looked for {', '.join(BROWSERS)}): apt-get install -y chromium")


class DevTools:
    """A minimal DevTools-protocol client over Chromium's pipe (fd 3 in, fd 4 out, NUL-separated JSON)."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_chrome, self._write = os.pipe()
        self._read, from_chrome = os.pipe()

        def wire() -> None:  # in the child: the pipes become fds 3 and 4
            high_in, high_out = os.dup(to_chrome), os.dup(from_chrome)
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        flags += ["--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]
        self.proc = subprocess.Popen(
            [binary, *flags, "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=wire,
            close_fds=False,  # would close fds 3 and 4 after wire(); the pipes' own fds close on exec
        )
        os.close(to_chrome)
        os.close(from_chrome)
        self._buffer = b""
        self._next = 0
        self.events: list[dict] = []

    def send(self, method: str, session: str | None = None, timeout: float = 30.0, **params) -> dict:
        self._next += 1
        message: dict = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            for reply in self._receive(deadline):
                if reply.get("id") == self._next:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
                self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method:
                    self.events.remove(event)
                    return event
            self.events += self._receive(deadline)

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.events += self._receive(deadline, quiet=True)

    def _receive(self, deadline: float, quiet: bool = False) -> list[dict]:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([self._read], [], [], max(left, 0))
        if not ready:
            if quiet:
                return []
            raise TimeoutError("Chromium did not answer")
        chunk = os.read(self._read, 1 << 20)
        if not chunk:
            raise RuntimeError("Chromium closed the pipe: " + self.proc.stderr.read().decode()[-2000:])
        self._buffer += chunk
        *messages, self._buffer = self._buffer.split(b"\0")
        return [json.loads(m) for m in messages if m]

    def close(self) -> str:
        try:
            self.send("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            self.proc.kill()
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        os.close(self._write)
        os.close(self._read)
        return err.decode(errors="replace")


PROBE = """JSON.stringify({
  scripts: document.scripts.length,
  title: document.title,
  sections: [...document.querySelectorAll('section[id]')].map(s => s.id),
  matrixRows: document.querySelectorAll('#matrix tr th.run').length,
  matrixColumns: document.querySelectorAll('#matrix th.gate').length,
  cells: [...document.querySelectorAll('#matrix td.cell')].map(c => c.textContent.trim()),
  charts: document.querySelectorAll('svg.chart').length,
  thresholds: document.querySelectorAll('svg.chart .threshold').length,
  undecidedBands: document.querySelectorAll('svg.chart rect.band.undecided').length,
  decidedBands: document.querySelectorAll('svg.chart rect.band.decided').length,
  flaky: document.querySelectorAll('#flaky tr').length,
  steps: document.querySelectorAll('#steps tr').length,
  runLinks: document.querySelectorAll('a[href^="runs/"]').length,
  worst: document.querySelectorAll('#worst tr').length,
  verdicts: document.querySelectorAll('#verdicts td.cell').length,
  heatRows: [...document.querySelectorAll('table.heat th.run')].map(h => h.textContent.trim()),
  heatCells: [...document.querySelectorAll('table.heat td.heat')].map(c => c.textContent.trim()),
  flipRows: document.querySelectorAll('table.flips tr.lost, table.flips tr.gained').length,
  marks: [...document.querySelectorAll('table.flips mark')].map(m => m.textContent),
  text: document.body.innerText,
  external: [...document.querySelectorAll('[src],[href]')]
    .map(e => e.getAttribute('src') || e.getAttribute('href')).filter(u => /^[a-z]+:/i.test(u)),
})"""


def history(tmp_path: Path) -> Path:
    """Eight runs of a student (EM, F1 decided by a bootstrap, speed-up) and a model whose name is
    a script: passes, failures, undecided verdicts, a flaky speed gate, a step in EM."""
    path = tmp_path / "history.jsonl"

    def gate(model, rule, metric, status, obtained, threshold, **extra):
        nodeid = f"quality_tests/gate_release.yaml::{model}::{rule}"
        return dict(nodeid=nodeid, model=model, rule=rule, metric=metric, op=">=", dataset="sample",
                    status=status, obtained=obtained, threshold=threshold, **extra)  # fmt: skip

    em = [80.0, 80.2, 79.9, 80.1, 80.0, 80.2, 75.4, 75.6]
    speed = [2.1, 2.05, 1.98, 2.02, 2.2, 2.1, 2.08, 2.12]
    for i in range(8):
        margin = (-0.6 + 0.35 * i, 2.4 + 0.35 * i)
        results = [
            gate("minilm3-distilled", "exact_match>=0.95*teacher", "exact_match",
                 "pass" if em[i] >= 76 else "fail", em[i], 76.0),
            gate("minilm3-distilled", "f1>=0.9*teacher@95%", "f1",
                 "undecided" if margin[0] < 0 else "pass", 71.0 + 0.3 * i, 70.0,
                 interval_low=margin[0], interval_high=margin[1], level=0.95),
            gate("minilm3-distilled", "speedup>=2", "speedup",
                 "pass" if speed[i] >= 2 else "fail", speed[i], 2.0),
            gate(EVIL, "f1>=40", "f1", "fail" if i == 5 else "pass", 50.0 - (12 if i == 5 else 0), 40.0),
        ]  # fmt: skip
        metrics = [
            {"model": "minilm3-distilled", "dataset": "sample", "exact_match": em[i], "f1": 71.0 + 0.3 * i,
             "speedup": speed[i], "seconds_per_question": 0.0154 * 2.1 / speed[i]},
            {"model": EVIL, "dataset": "sample", "f1": 50.0},
        ]  # fmt: skip
        run = build_run(
            results=results, metrics=metrics, started=1.76e9 + 3600 * i, exit_status=1, rootdir=tmp_path
        )
        run["git"] = {"commit": ("c0ffee" if i in (1, 2, 3) else f"{i:02d}") * 7, "branch": "main"}
        if i >= 6:  # runs 7 and 8 kept their slice tables: against the teacher, and run 8 against run 7
            run["slices"] = slice_entries(i)
        if i == 7:
            run["label"] = EVIL
            run["worst_questions"] = [
                {"model": EVIL, "dataset": "sample", "id": "q7", "question": "Who leavens bread?",
                 "prediction": EVIL, "references": ["yeast", EVIL], "f1": 0.0},
            ]  # fmt: skip
        append_run(path, run)
    return path


def slice_entries(i: int) -> list[dict]:
    """What a run keeps of its models' slices (qagate.reports.diff.run_slices): the student
    against its teacher, F1 lower on "how" questions in the later run, and a flip whose answer
    is a script."""
    drop = 6.0 if i == 7 else 1.0

    def row(n, em, f1, ref_em, ref_f1, lost, gained):
        return {
            "n": n,
            "em": em,
            "f1": f1,
            "ref_em": ref_em,
            "ref_f1": ref_f1,
            "lost": lost,
            "gained": gained,
        }

    slices = {
        "all": row(65, 75.0, 80.0, 80.0, 84.0, 4, 1),
        "question=what": row(40, 80.0, 85.0, 82.0, 86.0, 2, 1),
        "question=how": row(25, 60.0, 70.0 - drop, 75.0, 80.0, 2, 0),
    }
    flip = {
        "id": "q7",
        "direction": "lost",
        "question": "How does yeast leaven bread?",
        "gold": ["by fermenting"],
        "b": EVIL,
        "a": "by fermenting",
        "f1_b": 0.0,
        "f1_a": 1.0,
        "context": ["Yeast leavens bread", "by fermenting", f"sugars. {EVIL}"],
    }
    return [
        {"model": "minilm3-distilled", "dataset": "sample", "reference": "minilm6-teacher", "slices": slices,
         "flips": [flip]},
        {"model": "minilm6-teacher", "dataset": "sample", "reference": None,
         "slices": {"all": {"n": 65, "em": 80.0, "f1": 84.0}}},
    ]  # fmt: skip


def load(tools: DevTools, url: str) -> dict:
    """Open ``url`` in a fresh tab, wait for it to load, and probe its DOM."""
    target = tools.send("Target.createTarget", url="about:blank")["targetId"]
    session = tools.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        tools.send(f"{domain}.enable", session)
    tools.send("Emulation.setDeviceMetricsOverride", session, width=1400, height=1300, deviceScaleFactor=1,
               mobile=False)  # fmt: skip
    tools.send("Page.navigate", session, url=url)
    tools.wait_for("Page.loadEventFired")
    tools.drain(0.5)
    probe = tools.send("Runtime.evaluate", session, expression=PROBE, returnByValue=True)
    found = json.loads(probe["result"]["value"])
    found["png"] = base64.b64decode(tools.send("Page.captureScreenshot", session, format="png")["data"])
    return found


def test_the_dashboard_renders_in_chromium_without_errors(tmp_path):
    binary = chromium()
    site = tmp_path / "site"
    assert cli.main(["dashboard", "--history", str(history(tmp_path)), "--out", str(site)]) == 0
    worst_page = max((site / "runs").iterdir(), key=lambda p: "Who leavens" in p.read_text())
    sample = json.loads((Path(cli.__file__).parents[1] / "resources" / "sample-squad.json").read_text())
    answers = {
        qa["id"]: qa["answers"][0]["text"] for a in sample["data"] for p in a["paragraphs"] for qa in p["qas"]
    }
    (tmp_path / "a.json").write_text(json.dumps(answers))
    (tmp_path / "b.json").write_text(json.dumps(answers | {next(iter(answers)): EVIL}))
    diff_page = tmp_path / "diff.html"
    assert (
        cli.main(
            ["diff", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "sample", "--html", str(diff_page)]
        )
        == 0
    )
    tools = DevTools(binary, tmp_path / "profile")
    try:
        front = load(tools, (site / "index.html").as_uri())
        run = load(tools, worst_page.as_uri())
        diff = load(tools, diff_page.as_uri())
        events = list(tools.events)
    finally:
        stderr = tools.close()
    problems = [
        e for e in events
        if e.get("method") in ("Runtime.exceptionThrown", "Page.javascriptDialogOpening")
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") in ("error", "assert"))
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")
    ]  # fmt: skip
    assert problems == [], problems
    requests = [
        e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"
    ]
    assert all(url.startswith("file://") for url in requests), requests  # nothing from the network
    assert "Uncaught" not in stderr and "CONSOLE" not in stderr

    shot = tmp_path / "dashboard.png"
    shot.write_bytes(front["png"])
    keep = os.environ.get("QAGATE_DASHBOARD_SCREENSHOT")
    if keep:
        Path(keep).write_bytes(front["png"])
    assert front["png"][:8] == b"\x89PNG\r\n\x1a\n" and len(front["png"]) > 10_000

    assert front["scripts"] == 0 and front["external"] == []
    assert front["sections"] == ["matrix", "trends", "speedup", "flaky", "steps", "metrics", "runs"]
    assert front["matrixRows"] == 8 and front["matrixColumns"] == 4
    assert {"\u2713", "\u2717", "?"} <= set(front["cells"])  # pass, fail, undecided: a symbol each
    assert front["charts"] >= 6 and front["thresholds"] >= 4
    assert front["undecidedBands"] >= 1 and front["decidedBands"] >= 1
    assert front["flaky"] == 2  # a header and the speed gate that flipped at commit c0ffee...
    assert front["steps"] >= 2 and front["runLinks"] >= 8
    assert EVIL in front["text"]  # shown as text, never run

    assert run["scripts"] == 0 and run["external"] == [] and run["verdicts"] == 4
    assert run["worst"] == 2 and EVIL in run["text"] and "Who leavens bread?" in run["text"]
    assert "slices" in run["sections"]
    assert run["heatRows"] == ["minilm3-distilled / minilm6-teacher", "minilm3-distilled / run 7"]
    cells = [
        "95",
        "99",
        "80",
        "100",
        "100",
        "93",
    ]  # all, what, how: F1 as % of the teacher's, then of run 7's
    assert run["heatCells"] == cells
    assert run["flipRows"] == 1 and run["marks"] == ["by fermenting"] and f"sugars. {EVIL}" in run["text"]

    assert (
        diff["scripts"] == 0 and diff["external"] == [] and diff["sections"] == ["heatmap", "slices", "flips"]
    )
    assert diff["heatRows"] == ["b / a"] and diff["heatCells"][0] != "" and diff["flipRows"] == 1
    assert EVIL in diff["text"]  # the hostile answer, shown as text
