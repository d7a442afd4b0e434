"""The HTML report: built from a real run folder on disk, checked as text and in a real headless browser."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sattag.config import Config
from sattag.runfolder import RunFolder
from sattag.viz.report import render_report, write_report

SCENES = ["6010_1_2", "6120_2_0"]
ERROR_TEXT = "band file <A> unreadable & <script>alert(1)</script>"
ODD_STEM = "odd <name> & co"


def _png(path: Path, kind: str, seed: int) -> None:
    """A small real PNG figure written by matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(3.2, 2.4), dpi=60)
    if kind == "image":
        ax.imshow(rng.random((24, 32)), cmap="viridis")
        ax.set_axis_off()
    else:
        ax.hist(rng.normal(size=500), bins=30, color="#2e86c1")
        ax.set_title(path.stem, fontsize=8)
    fig.savefig(path)
    plt.close(fig)


def make_run_folder(root: Path) -> RunFolder:
    """A run folder with every file the report reads, each written by its owner's writer: run.json,
    the CSVs and PNG figures."""
    from sattag.engine.records import write_failures, write_run_json, write_timings
    from sattag.engine.scenes import Failure, Timing
    from sattag.evaluate import write_scores
    from sattag.ingest import write_offsets
    from sattag.learn import write_auc

    run = RunFolder(root)
    root.mkdir(parents=True, exist_ok=True)
    write_run_json(run.run_json, {
        "config": Config().to_dict(),
        "versions": {"sattag": "0.1.0", "numpy": np.__version__, "python": "3.11"},
        "scenes": SCENES,
        "started": "2024-05-01T10:00:00Z",
        "finished": "2024-05-01T10:07:30Z",
    })
    write_auc(run.auc_csv, pd.DataFrame(
        {"class_id": [1, 5], "class": ["Buildings", "Trees"], "n_in": [20000, 15000], "n_out": [20000, 20000],
         "n_train": [36000, 31500], "n_valid": [4000, 3500], "auc": [0.91234, 0.87], "seconds": [3.5, 2.25],
         "skipped": ["", ""]}))
    nan = float("nan")
    write_scores(run.scores_csv, pd.DataFrame(
        {"split": "held-out", "scenes": 2, "kind": ["polygon"] * 3 + ["pixel"] * 3,
         "class_id": [1, 5, 0] * 2, "class": ["Buildings", "Trees", "mean"] * 2,
         "intersection": [10.0, 30.0, nan, 100, 300, nan], "union": [20.0, 40.0, nan, 400, 400, nan],
         "jaccard": [0.5, 0.75, 0.625, 0.25, 0.75, 0.5]}))
    write_timings(run.timings_csv, [Timing("ingest", SCENES[0], 1.5, 200), Timing("ingest", SCENES[1], 2.5, 300),
                                    Timing("predict", SCENES[0], 4.0, 512.5)])
    write_failures(run.failures_csv, [Failure("6120_2_0", "predict", ERROR_TEXT)])
    write_offsets(run.offsets_csv, [(SCENES[0], "P", 0.12, -0.3, 0.97), (SCENES[0], "A", 41.5, 12.25, 0.81)])
    figs = run.figures
    _png(figs / "thumbnail_6010_1_2.png", "image", 0)
    _png(figs / "explore" / "6010_1_2_band_M2.png", "image", 1)
    _png(figs / "explore" / "6010_1_2_band_M10.png", "image", 2)
    _png(figs / "explore" / "6010_1_2_histograms.png", "hist", 3)
    _png(figs / "clusters" / "6010_1_2_clusters.png", "image", 4)
    _png(figs / "overlays" / f"{ODD_STEM}.png", "image", 5)
    (figs / "explore" / "notes.txt").write_text("not an image")
    return run


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> RunFolder:
    return make_run_folder(tmp_path_factory.mktemp("report") / "run")


@pytest.fixture(scope="module")
def report(run_folder) -> Path:
    return write_report(run_folder.root)


def n_pngs(run: RunFolder) -> int:
    return len(list(run.figures.rglob("*.png")))


class _Collect(HTMLParser):
    """Tags with their attributes, and the text of every table cell."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.cells: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(text: str) -> _Collect:
    p = _Collect()
    p.feed(text)
    return p


# ---------------------------------------------------------------- the page as text

def test_report_is_written_atomically_where_the_run_folder_says(run_folder, report):
    assert report == run_folder.report_html and report.is_file()
    assert not [p for p in run_folder.root.iterdir() if ".tmp" in p.name]


def test_report_embeds_every_image_and_references_nothing_outside(run_folder, report):
    text = report.read_text(encoding="utf-8")
    page = parse(text)
    imgs = [a for t, a in page.tags if t == "img"]
    assert len(imgs) == n_pngs(run_folder) == 6
    for a in imgs:
        assert a["src"].startswith("data:image/png;base64,")
        assert "loading" not in a  # no lazy loading: screenshots and prints show every image
    # Nothing points outside the page: no external src/href, no stylesheet links, no CSS imports.
    for tag, a in page.tags:
        for attr in ("src", "href", "srcset", "poster", "data"):
            if attr in a and a[attr] is not None:
                assert a[attr].startswith(("data:", "#")), (tag, attr, a[attr][:80])
        assert tag not in ("link", "iframe", "object", "embed")
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:|//|file:)", text, re.I)
    assert "@import" not in text and not re.search(r"url\(\s*[\"']?(https?:|//)", text)
    # Captions are the file stems, escaped; the text file is not an image.
    assert "6010_1_2_band_M2" in page.cells or "6010_1_2_band_M2" in text
    assert html_escaped(ODD_STEM) in text and ODD_STEM not in text
    assert "notes" not in [a.get("alt") for a in imgs]
    # Natural order within a group: M2 before M10.
    assert text.index("6010_1_2_band_M2") < text.index("6010_1_2_band_M10")


def html_escaped(s: str) -> str:
    import html

    return html.escape(s, quote=True)


def test_report_tables_hold_the_csv_values_formatted(report):
    text = report.read_text(encoding="utf-8")
    cells = parse(text).cells
    # AUC: 3 decimals, counts as integers
    assert "0.912" in cells and "0.870" in cells and "36,000" in cells
    # Jaccard: both kinds, the mean rows in bold
    assert "polygon Jaccard" in text and "pixel Jaccard" in text
    assert "0.625" in cells and "0.500" in cells
    assert text.count('<tr class="mean">') >= 2
    # Offsets
    assert "41.500" in cells and "-0.300" in cells
    # Timings per stage: ingest count 2, total 4.000, mean 2.000, max peak 300.000
    i = cells.index("ingest")
    assert cells[i + 1 : i + 5] == ["2", "4.000", "2.000", "300.000"]
    assert "<details" in text and "per scene" in text
    # Numbers are right-aligned
    assert re.search(r'<td class="num[^"]*">0\.912', text)
    # Class legend with every DSTL class and its colour
    for name, colour in (("Buildings", "#c0392b"), ("Vehicle Small", "#e84393")):
        assert name in text and f"background:{colour}" in text
    # Header: version, run folder, config values from run.json
    assert "sattag" in text and "0.1.0" in text and "6010_1_2" in text
    assert "n_trees" in text and "max_depth" in text


def test_failures_are_highlighted_and_escaped(report):
    text = report.read_text(encoding="utf-8")
    assert "1 failure" in text and 'class="banner bad"' in text
    assert html_escaped(ERROR_TEXT) in text
    assert "<script>alert" not in text and "<A>" not in text


def test_numeric_scene_ids_stay_text_and_mean_rows_are_class_0(tmp_path):
    """Types come from the owners' readers: a scene id "6010" is text, and the mean row of a score
    table is the one with class_id 0, whatever its name."""
    from sattag.engine.records import write_timings
    from sattag.engine.scenes import Timing
    from sattag.evaluate import write_scores

    run = RunFolder(tmp_path / "run")
    run.root.mkdir()
    write_scores(run.scores_csv, pd.DataFrame({"split": "held-out", "kind": "pixel", "scenes": 1,
                                               "class_id": [3, 0], "class": ["Road", "all"],
                                               "intersection": [1.0, float("nan")], "union": [4.0, float("nan")],
                                               "jaccard": [0.25, 0.25]}))
    write_timings(run.timings_csv, [Timing("ingest", "6010", 1, 10)])
    text = write_report(run.root).read_text()
    page = parse(text)
    assert text.count('<tr class="mean">') == 2  # the scores mean and the timings total
    assert "6010" in page.cells and "6010.000" not in page.cells
    assert "background:#2c3e50" in text  # Road's colour beside its name
    assert "0.250" in page.cells and "pixel Jaccard" in text and "polygon Jaccard" not in text
    assert "held-out mean Jaccard" in text


def test_every_section_is_optional(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    path = write_report(empty)
    text = path.read_text()
    for note in ("no run.json", "no auc.csv", "no scores.csv", "no timings.csv", "no offsets.csv",
                 "no figures/", "no failures"):
        assert note in text, note
    assert "<img" not in text
    # A header-only failures.csv means no failures; a broken run.json becomes a note, not an error.
    (empty / "failures.csv").write_text("scene,stage,error\n")
    (empty / "run.json").write_text("{not json")
    (empty / "auc.csv").write_bytes(b"\xff\xfe\x00garbage")
    text = render_report(empty)
    assert 'class="banner ok"' in text and "could not read run.json" in text
    assert "could not read auc.csv" in text


# ---------------------------------------------------------------- a run folder the engine wrote

@pytest.fixture(scope="module")
def engine_run(tmp_path_factory) -> RunFolder:
    """``sattag run`` on small generated DSTL-format data (3 labelled scenes, one held out)."""
    import subprocess
    import sys

    from sattag.synth import generate_dataset

    root = tmp_path_factory.mktemp("engine_report")
    data = root / "data"
    generate_dataset(data, n_scenes=3, n_train=3, size=300, seed=3)
    config = root / "small.toml"
    config.write_text("[sample]\nn_in = 2000\nn_out = 2000\n[model]\nn_trees = 10\nmax_depth = 5\n")
    held = sorted(p.stem for p in (data / "three_band").glob("*.tif"))[0]
    res = subprocess.run([sys.executable, "-m", "sattag.cli", "run", str(data), "--out", str(root / "run"),
                          "--workers", "0", "--quiet", "--config", str(config), "--holdout-scenes", held],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return RunFolder(root / "run")


@pytest.mark.slow
def test_report_of_an_engine_run_shows_the_runs_numbers(engine_run):
    """The report of a folder the engine wrote: its tables hold what the owners' readers read."""
    from sattag.engine.records import read_failures, read_timings
    from sattag.evaluate import MEAN_ID, read_scores
    from sattag.ingest import read_offsets
    from sattag.learn import read_auc
    from sattag.viz.report import _fmt

    text = engine_run.report_html.read_text(encoding="utf-8")
    page = parse(text)
    cells = page.cells
    assert "could not read" not in text
    auc = read_auc(engine_run.auc_csv)
    assert set(auc["split"]) == {"held-out", "in-sample"}
    for value in auc["auc"].dropna():
        assert _fmt(value) in cells
    assert _fmt(auc.loc[auc["split"] == "in-sample", "n_train"].iloc[0], integer=True) in cells
    scores = read_scores(engine_run.scores_csv)
    assert list(dict.fromkeys(scores["split"])) == ["held-out", "in-sample"]
    for value in scores["jaccard"].dropna():
        assert _fmt(value) in cells
    # one bold mean row per split and kind; the headline cards are the polygon means, held-out first
    assert text.count('<tr class="mean">') == len(scores[scores["class_id"] == MEAN_ID]) + 1  # + timings total
    for split in ("held-out", "in-sample"):
        mean = scores[(scores["split"] == split) & (scores["kind"] == "polygon") & (scores["class_id"] == MEAN_ID)]
        card = f'<div class="v">{_fmt(mean["jaccard"].iloc[0])}</div><div class="k">{split} mean Jaccard</div>'
        assert card in text
    assert text.index("held-out mean Jaccard") < text.index("in-sample mean Jaccard")
    for value in read_offsets(engine_run.offsets_csv)[["dx", "dy"]].to_numpy().ravel():
        assert _fmt(value) in cells
    timings = read_timings(engine_run.timings_csv)
    i = cells.index("ingest")
    assert cells[i + 1] == str((timings["stage"] == "ingest").sum()) == "3"
    assert read_failures(engine_run.failures_csv).empty and 'class="banner ok"' in text
    assert "Buildings" in text and "background:#c0392b" in text  # the run's class table (DSTL's)


# ---------------------------------------------------------------- the page in a real browser

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


@pytest.fixture(scope="module")
def chromium():
    exe = find_chromium()
    if exe is None:
        pytest.skip("no chromium binary found (install Debian's `chromium` to run the browser tests)")
    return exe


def run_chromium(exe: str, profile: Path, args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    profile.mkdir(parents=True, exist_ok=True)
    cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
    # HOME in the temp dir: chromium writes caches and crash dumps there.
    env = {**os.environ, "HOME": str(profile)}
    # Its own process group, so that a hung browser is ended with all its helper processes.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        pytest.fail(f"chromium did not finish within {timeout} s: {err[-2000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _kill_group(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def console_errors(stderr: str) -> list[str]:
    """Console messages and page errors chromium logged about the page."""
    return [
        line for line in stderr.splitlines()
        if ("CONSOLE" in line and "report.html" in line) or "Uncaught" in line
        or "Refused to" in line or "Failed to load" in line
    ]


def test_browser_loads_the_report_and_decodes_every_image(chromium, run_folder, report, tmp_path):
    res = run_chromium(chromium, tmp_path / "profile", [
        "--run-all-compositor-stages-before-draw", "--virtual-time-budget=5000",
        "--dump-dom", report.resolve().as_uri(),
    ])
    assert res.returncode == 0, res.stderr[-3000:]
    dom = res.stdout
    page = parse(dom)
    body = [a for t, a in page.tags if t == "body"]
    assert body, dom[:500]
    n = n_pngs(run_folder)
    # The inline script ran after load and counted the images the browser decoded.
    assert body[0].get("data-images-total") == str(n)
    assert body[0].get("data-images-ok") == str(n), console_errors(res.stderr)
    assert sum(t == "img" for t, _ in page.tags) == n
    assert sum(t == "table" for t, _ in page.tags) >= 6
    assert "0.912" in page.cells and "Buildings" in " ".join(page.cells)
    assert console_errors(res.stderr) == []


def test_browser_screenshot_is_not_blank(chromium, report, tmp_path):
    from PIL import Image

    shot = tmp_path / "report.png"
    res = run_chromium(chromium, tmp_path / "profile", [
        "--run-all-compositor-stages-before-draw", "--virtual-time-budget=5000",
        f"--screenshot={shot}", "--window-size=1280,2000", report.resolve().as_uri(),
    ])
    assert res.returncode == 0 and shot.is_file(), res.stderr[-3000:]
    img = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
    assert img.shape[:2] == (2000, 1280)
    assert img.std() > 10  # text, tables and figures, not one flat colour
    # Several distinct colours: the dark header, white page, the figures' colour maps.
    assert len(np.unique(img.reshape(-1, 3)[::7], axis=0)) > 50
    assert console_errors(res.stderr) == []


def test_browser_check_catches_a_broken_image(chromium, run_folder, tmp_path):
    """The decoded-image count is a real check: an undecodable PNG makes it fall short."""
    bad = RunFolder(tmp_path / "run")
    shutil.copytree(run_folder.figures, bad.figures)
    (bad.figures / "explore" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    report = write_report(bad.root)
    res = run_chromium(chromium, tmp_path / "profile", [
        "--run-all-compositor-stages-before-draw", "--virtual-time-budget=5000",
        "--dump-dom", report.resolve().as_uri(),
    ])
    body = [a for t, a in parse(res.stdout).tags if t == "body"][0]
    n = n_pngs(bad)
    assert body.get("data-images-total") == str(n)
    assert body.get("data-images-ok") == str(n - 1)
    assert any("broken" in line for line in console_errors(res.stderr))


# ---------------------------------------------------------------- DevTools protocol over a pipe

class DevTools:
    """A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (fds 3 and 4)."""

    def __init__(self, exe: str, profile: Path):
        profile.mkdir(parents=True, exist_ok=True)
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def fds():  # in the child: chromium reads commands on fd 3, writes replies on fd 4
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
             "--window-size=1280,2000", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=fds, env={**os.environ, "HOME": str(profile)},
            start_new_session=True,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _read(self, deadline: float) -> dict:
        import select
        import time

        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("no answer from chromium over the DevTools pipe")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30) -> dict:
        import time

        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        import time

        deadline = time.monotonic() + timeout
        for ev in self.events:
            if ev.get("method") == method:
                return ev
        while True:
            ev = self._read(deadline)
            self.events.append(ev)
            if ev.get("method") == method:
                return ev

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except (OSError, TimeoutError, EOFError, RuntimeError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _kill_group(self.proc)
            self.proc.wait()
        os.close(self._r)
        os.close(self._w)


def test_devtools_page_loads_without_errors_or_requests(chromium, run_folder, report, tmp_path):
    """Through the DevTools protocol: no exception, no console error, no request leaves the page."""
    dt = DevTools(chromium, tmp_path / "profile")
    try:
        target = dt.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = dt.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            dt.send(f"{domain}.enable", session=session)
        dt.send("Page.navigate", {"url": report.resolve().as_uri()}, session=session)
        dt.wait_for("Page.loadEventFired")
        state = dt.send("Runtime.evaluate", {
            "expression": "JSON.stringify({total: document.images.length,"
                          " ok: Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length,"
                          " tables: document.querySelectorAll('table').length,"
                          " body: Object.assign({}, document.body.dataset)})",
            "returnByValue": True,
        }, session=session)["result"]["value"]
    finally:
        dt.close()
    state = json.loads(state)
    n = n_pngs(run_folder)
    assert state["total"] == state["ok"] == n
    assert state["body"] == {"imagesOk": str(n), "imagesTotal": str(n)}
    assert state["tables"] >= 6
    methods = [e.get("method") for e in dt.events]
    problems = [e for e in dt.events if e.get("method") == "Runtime.exceptionThrown"
                or (e.get("method") == "Runtime.consoleAPICalled"
                    and e["params"].get("type") in ("error", "warning", "assert"))
                or (e.get("method") == "Log.entryAdded"
                    and e["params"]["entry"].get("level") in ("error", "warning"))
                or e.get("method") == "Network.loadingFailed"]
    assert problems == []
    # Every request but the report itself is for an embedded data: URI; nothing else is fetched.
    urls = [e["params"]["request"]["url"] for e in dt.events if e.get("method") == "Network.requestWillBeSent"]
    assert [u for u in urls if not u.startswith("data:")] == [report.resolve().as_uri()]
    assert sum(u.startswith("data:image/png;base64,") for u in urls) >= 1
    assert "Page.loadEventFired" in methods


def test_small_areas_are_not_shown_as_zero():
    """Polygon areas in DSTL grid units are ~1e-6: they must not print as 0.000."""
    from sattag.viz.report import _fmt

    assert _fmt(1.234e-06) == "1.234e-06"
    assert _fmt(0.0) == "0.000"
    assert _fmt(0.5) == "0.500"
    assert _fmt(36000, integer=True) == "36,000" and _fmt(float("nan")) == "–" and _fmt(pd.NA, True) == "–"
