"""The HTML report of a run: one self-contained page built from whatever the run folder holds.

Every image is embedded as a base64 ``data:`` URI and the CSS is inline, so the page can be mailed,
archived or opened offline; a Content-Security-Policy forbids the browser to fetch anything else.
Each section is optional: it is shown when its files exist, and replaced by a short note when not.
The page needs no JavaScript; a few lines of inline script only record, on the ``<body>``, how many
images the browser decoded (``data-images-ok`` of ``data-images-total``), which the browser test reads.
"""
from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import json
import math
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

from sattag._files import atomic_path
from sattag.classes import DSTL_CLASSES, ClassTable
from sattag.runfolder import RunFolder

__all__ = ["write_report", "render_report"]

#: Image files embedded from ``RUN/figures`` and their MIME types.
_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|NaN|inf|Inf|infinity|Infinity)")

#: Columns that hold names even when they look like numbers (a scene id "6010" is no quantity).
_TEXT_COLUMNS = {"scene", "stage", "group", "class", "kind", "error", "band"}

#: Columns whose numbers are counts (printed as integers with thousands separators).
_INT_COLUMNS = {"class_id", "n_in", "n_out", "n_train", "n_valid", "count", "group_size"}

# Nothing may be fetched from anywhere: images are data: URIs, style and script are inline.
_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)

_CSS = """
:root { --fg:#1f2933; --muted:#616e7c; --line:#cbd2d9; --head:#f0f4f8; --accent:#2e86c1;
        --bad:#c0392b; --badbg:#fdecea; --ok:#1e8449; --okbg:#e9f7ef; }
* { box-sizing: border-box; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
       "DejaVu Sans", Arial, sans-serif; color: var(--fg); background: #fff; line-height: 1.45;
       font-size: 15px; }
header.top { background: #102a43; color: #f0f4f8; padding: 18px 32px 14px; }
header.top h1 { margin: 0 0 4px; font-size: 24px; font-weight: 600; letter-spacing: .2px; }
header.top .meta { color: #bcccdc; font-size: 13px; }
header.top .meta code { color: #f0f4f8; }
nav.toc { background: var(--head); border-bottom: 1px solid var(--line); padding: 8px 32px;
          font-size: 13px; }
nav.toc a { color: var(--accent); text-decoration: none; margin-right: 14px; white-space: nowrap; }
nav.toc a:hover { text-decoration: underline; }
main { padding: 8px 32px 40px; max-width: 1400px; }
section { margin-top: 26px; }
h2 { font-size: 19px; font-weight: 600; margin: 0 0 10px; padding-bottom: 4px;
     border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; font-weight: 600; margin: 18px 0 8px; color: #334e68; }
p.note { color: var(--muted); font-style: italic; margin: 6px 0; }
.src { color: var(--muted); font-size: 12px; font-weight: normal; margin-left: 8px; }
table { border-collapse: collapse; margin: 4px 0 8px; font-size: 13.5px; }
th, td { border: 1px solid var(--line); padding: 4px 10px; vertical-align: top; }
th { background: var(--head); text-align: left; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) td { background: #fafbfc; }
tr.mean td { font-weight: 700; background: #eef2f7 !important; border-top: 2px solid #9fb3c8; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
          border: 1px solid rgba(0,0,0,.35); vertical-align: -1px; margin-right: 6px; }
.bar { display: inline-block; height: 8px; background: var(--accent); border-radius: 2px;
       vertical-align: middle; margin-left: 8px; opacity: .75; }
.bar-cell { white-space: nowrap; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 14px 0 2px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 120px;
        background: #fff; }
.card .v { font-size: 20px; font-weight: 600; }
.card .k { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .4px; }
.card.bad { border-color: var(--bad); background: var(--badbg); }
.card.bad .v { color: var(--bad); }
.card.dim .v { color: var(--muted); }
.cols { display: flex; flex-wrap: wrap; gap: 10px 28px; align-items: flex-start; }
.cols > div { min-width: 0; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
td code { white-space: pre-wrap; word-break: break-word; }
.failures table { border-color: var(--bad); }
.failures th { background: #f9d6d2; border-color: #e6a39b; }
.failures td { background: var(--badbg) !important; border-color: #e6a39b; }
.failures td.err { color: #8a1f14; font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace;
                   font-size: 12.5px; white-space: pre-wrap; word-break: break-word; max-width: 900px; }
.banner { border-radius: 6px; padding: 8px 14px; margin: 6px 0; font-weight: 600; display: inline-block; }
.banner.ok { background: var(--okbg); color: var(--ok); border: 1px solid #a9dfbf; }
.banner.bad { background: var(--badbg); color: var(--bad); border: 1px solid #e6a39b; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 14px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 8px; background: #fff; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { font-size: 12.5px; color: #334e68; margin-top: 6px; text-align: center;
             word-break: break-word; }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--accent); font-size: 13.5px; margin-bottom: 6px; }
details.inner { margin: 0; }
details.inner summary { margin: 0; font-size: 12.5px; }
details.inner ul { margin: 2px 0 0; padding-left: 18px; max-width: 720px; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 22px; font-size: 13.5px; }
.legend span.item { white-space: nowrap; }
footer { color: var(--muted); font-size: 12px; border-top: 1px solid var(--line);
         padding: 10px 32px; margin-top: 30px; }
"""

# Records, on <body>, how many images the browser decoded; the page does not need it to display.
_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; }
    else { console.error("image not decoded: " + imgs[i].alt); }
  }
  document.body.dataset.imagesOk = String(ok);
  document.body.dataset.imagesTotal = String(imgs.length);
});
"""


# ---------------------------------------------------------------- small helpers

def _e(value: Any) -> str:
    """Escape any value for HTML text or an attribute value."""
    return html.escape("" if value is None else str(value), quote=True)


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV file (rows as dicts of strings)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = [dict(r) for r in reader]
        header = list(reader.fieldnames or [])
    return header, rows


def _number(text: Any) -> float | None:
    """``text`` as a number, or None when it is not one (empty cells are not numbers)."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip()
    # Strict: float() would also take "6120_2_0" (a DSTL scene id) as 6120.2 and "nan"/"inf" words.
    if not _NUMBER.fullmatch(s):
        return None
    return float(s)


def _fmt(value: Any, column: str = "") -> str:
    """A number with 3 decimals (counts as integers); anything else as text."""
    x = _number(value)
    if x is None:
        return "" if value is None else str(value)
    if math.isnan(x):
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if column in _INT_COLUMNS and x.is_integer():
        return f"{int(x):,}"
    if x != 0 and abs(x) < 0.01:
        # Areas in DSTL grid units are ~1e-6: 3 decimals would show them as 0.
        return f"{x:.3e}"
    return f"{x:,.3f}"


def _numeric_columns(header: Sequence[str], rows: Sequence[dict]) -> set[str]:
    """Columns whose every non-empty value is a number (they are right-aligned)."""
    out = set()
    for col in header:
        if col in _TEXT_COLUMNS:
            continue
        values = [r.get(col) for r in rows if str(r.get(col) or "").strip()]
        if values and all(_number(v) is not None for v in values):
            out.add(col)
    return out


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _src(path: Path, run: RunFolder) -> str:
    """The file a section was built from, relative to the run folder."""
    try:
        rel = path.relative_to(run.root)
    except ValueError:
        rel = path
    return f'<span class="src">{_e(rel)}</span>'


def _swatch(colour: str) -> str:
    # Only #rgb / #rrggbb reach the style attribute; anything else would be an injection vector.
    if not re.fullmatch(r"#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?", colour or ""):
        colour = "#ffffff"
    return f'<span class="swatch" style="background:{colour}"></span>'


def _class_cell(row: dict, classes: ClassTable) -> str:
    """The class name with its colour swatch, looked up by ``class_id``."""
    name = row.get("class") or ""
    cid = _number(row.get("class_id"))
    colour = None
    if cid is not None and cid.is_integer():
        try:
            colour = classes.by_id(int(cid)).colour
        except KeyError:
            colour = None
    return (_swatch(colour) if colour else "") + _e(name)


def _table(
    header: Sequence[str],
    rows: Sequence[dict],
    *,
    classes: ClassTable | None = None,
    mean_rows: Iterable[int] = (),
    bar_column: str | None = None,
    row_class: str = "",
    cell_class: dict[str, str] | None = None,
) -> str:
    """An HTML table of ``rows`` (dicts) under ``header``; numbers right-aligned with 3 decimals.

    ``classes`` adds a colour swatch to the ``class`` column; ``mean_rows`` (indices) are shown in bold;
    ``bar_column`` (values in [0, 1]) gets a small bar beside its number.
    """
    numeric = _numeric_columns(header, rows)
    mean_rows = set(mean_rows)
    cell_class = cell_class or {}
    out = ["<table><thead><tr>"]
    for col in header:
        cls = ' class="num"' if col in numeric else ""
        out.append(f"<th{cls}>{_e(col)}</th>")
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(rows):
        classes_attr = " ".join(c for c in (row_class, "mean" if i in mean_rows else "") if c)
        out.append(f'<tr class="{classes_attr}">' if classes_attr else "<tr>")
        for col in header:
            value = row.get(col)
            if col == "class" and classes is not None:
                out.append(f"<td>{_class_cell(row, classes)}</td>")
            elif col in numeric:
                text = _e(_fmt(value, col))
                x = _number(value)
                if col == bar_column and x is not None and 0 <= x <= 1 and i not in mean_rows:
                    text += f'<span class="bar" style="width:{round(60 * x)}px"></span>'
                    out.append(f'<td class="num bar-cell">{text}</td>')
                else:
                    out.append(f'<td class="num">{text}</td>')
            else:
                extra = f' class="{cell_class[col]}"' if col in cell_class else ""
                out.append(f"<td{extra}>{_e(value)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _section(anchor: str, title: str, body: str, src: str = "") -> str:
    return f'<section id="{_e(anchor)}"><h2>{_e(title)}{src}</h2>{body}</section>'


def _guard(path: Path, build) -> str:
    """Run ``build()``; a file that cannot be read becomes a note instead of a failed report."""
    try:
        return build()
    except (OSError, UnicodeDecodeError, csv.Error, ValueError, KeyError, TypeError) as e:
        return _note(f"could not read {path.name}: {type(e).__name__}: {e}")


# ---------------------------------------------------------------- sections

def _load_run_json(run: RunFolder) -> tuple[dict | None, str | None]:
    """``run.json`` as a dict, or (None, a reason)."""
    path = run.run_json
    if not path.is_file():
        return None, "no run.json in this run folder"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return None, f"could not read run.json: {e}"
    if not isinstance(data, dict):
        return None, "run.json does not hold a JSON object"
    return data, None


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as (dotted key, leaf value) pairs; dicts of scalars and lists stay leaves."""
    out = []
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and any(isinstance(x, dict) for x in v.values()):
            out.extend(_flatten(v, key))
        else:
            out.append((key, v))
    return out


def _leaf_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return f"{v:g}"
    return json.dumps(v, separators=(", ", ": "), default=str)


def _leaf_html(v: Any) -> str:
    """A config value; long ones (lists of rules) folded away behind their item count."""
    text = _leaf_text(v)
    if len(text) <= 90:
        return f"<code>{_e(text)}</code>"
    if isinstance(v, (list, tuple)):
        items = "".join(f"<li><code>{_e(_leaf_text(x))}</code></li>" for x in v)
        return (f"<details class=\"inner\"><summary>{len(v)} item{'s' if len(v) != 1 else ''}</summary>"
                f"<ul>{items}</ul></details>")
    return f"<details class=\"inner\"><summary>{_e(text[:60])}…</summary><code>{_e(text)}</code></details>"


def _config_html(config: Any) -> str:
    """The config as one small key/value table per section."""
    if not isinstance(config, dict) or not config:
        return _note("run.json holds no config")
    blocks = []
    loose = []
    for section, values in config.items():
        if isinstance(values, dict):
            rows = "".join(
                f"<tr><td>{_e(k)}</td><td>{_leaf_html(v)}</td></tr>"
                for k, v in _flatten(values, "")
            )
            if not values:
                rows = '<tr><td colspan="2"><i>defaults</i></td></tr>'
            blocks.append(f"<div><h3>{_e(section)}</h3><table><tbody>{rows}</tbody></table></div>")
        else:
            loose.append(f"<tr><td>{_e(section)}</td><td>{_leaf_html(values)}</td></tr>")
    if loose:
        blocks.insert(0, f"<div><h3>general</h3><table><tbody>{''.join(loose)}</tbody></table></div>")
    return f'<div class="cols">{"".join(blocks)}</div>'


def _header_html(run: RunFolder, info: dict | None, generated: str, version: str) -> str:
    run_version = ""
    if info and isinstance(info.get("versions"), dict):
        v = info["versions"].get("sattag")
        if v and str(v) != version:
            run_version = f" · run made by sattag <code>{_e(v)}</code>"
    times = ""
    if info:
        for key in ("started", "finished"):
            if info.get(key):
                times += f" · {key} <code>{_e(info[key])}</code>"
    return (
        '<header class="top"><h1>sattag run report</h1><div class="meta">'
        f"run folder <code>{_e(run.root.resolve())}</code><br>"
        f"report written <code>{_e(generated)}</code> by sattag <code>{_e(version)}</code>"
        f"{run_version}{times}</div></header>"
    )


def _run_html(run: RunFolder, info: dict | None, reason: str | None) -> str:
    """Config, versions and scenes from ``run.json``."""
    if info is None:
        return _section("run", "Run", _note(reason or "no run.json"))
    parts = []
    scenes = info.get("scenes")
    if isinstance(scenes, list) and scenes:
        names = ", ".join(str(s.get("id", s)) if isinstance(s, dict) else str(s) for s in scenes)
        parts.append(f"<p><b>{len(scenes)} scene{'s' if len(scenes) != 1 else ''}:</b> {_e(names)}</p>")
    else:
        parts.append(_note("run.json lists no scenes"))
    if "config" in info:
        parts.append(f"<details open><summary>configuration</summary>{_config_html(info['config'])}</details>")
    else:
        parts.append(_note("run.json holds no config"))
    versions = info.get("versions")
    if isinstance(versions, dict) and versions:
        rows = "".join(f"<tr><td>{_e(k)}</td><td><code>{_e(v)}</code></td></tr>" for k, v in versions.items())
        parts.append(
            f"<details><summary>versions ({len(versions)})</summary>"
            f"<table><thead><tr><th>package</th><th>version</th></tr></thead><tbody>{rows}</tbody></table>"
            "</details>"
        )
    return _section("run", "Run", "".join(parts), _src(run.run_json, run))


def _legend_html(classes: ClassTable) -> str:
    items = "".join(
        f'<span class="item">{_swatch(c.colour)}<b>{_e(c.id)}</b> {_e(c.name)} '
        f'<code style="color:#616e7c">{_e(c.colour)}</code></span>'
        for c in classes
    )
    return _section("classes", "Classes", f'<div class="legend">{items}</div>')


def _is_mean_row(row: dict) -> bool:
    """The summary row of a scores table: named 'mean' (or 'all'), or without a class id."""
    name = str(row.get("class") or "").strip().lower()
    if name in {"mean", "all", "average"}:
        return True
    if "class_id" not in row:  # no id column: only the name can say so
        return False
    return str(row.get("class_id") or "").strip().lower() in {"", "mean", "all"}


#: How each side of a split is named in the report: held-out first, it is the figure to trust.
_SPLITS = {
    "held-out": "held-out scenes (never seen by the models)",
    "in-sample": "in-sample: the models' training scenes",
}


def _by_split(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """Rows grouped by their ``split`` column, held-out first (rows without one: a single group)."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r.get("split") or "", []).append(r)
    order = [k for k in _SPLITS if k in groups] + [k for k in groups if k not in _SPLITS]
    return [(k, groups[k]) for k in order]


def _auc_html(run: RunFolder, classes: ClassTable) -> str:
    path = run.auc_csv
    if not path.is_file():
        return _section("auc", "Model AUC", _note("no auc.csv: models were not trained in this run"))

    def build():
        header, rows = _read_csv(path)
        if not rows:
            return _note("auc.csv holds no rows")
        cols = [c for c in header if c not in ("split", "measured_on")]
        out = []
        for split, srows in _by_split(rows):
            how = srows[0].get("measured_on") or ""
            title = {"held-out": "held-out scenes: a balanced sample of scenes the models never saw",
                     "in-sample": "in-sample: 90/10 split of the training scenes' sampled pixels "
                                  "(neighbouring pixels leak: flatters the models)"}.get(split, how or split)
            out.append(f"<div><h3>{_e(title)}</h3>"
                       f"{_table(cols, srows, classes=classes, bar_column='auc')}</div>")
        return f'<div class="cols">{"".join(out)}</div>'

    return _section("auc", "Model AUC", _guard(path, build), _src(path, run))


def _scores_html(run: RunFolder, classes: ClassTable) -> str:
    path = run.scores_csv
    if not path.is_file():
        return _section("jaccard", "Jaccard", _note("no scores.csv: the run was not scored against truth"))

    def build():
        header, rows = _read_csv(path)
        if not rows:
            return _note("scores.csv holds no rows")
        if "kind" not in header:
            means = [i for i, r in enumerate(rows) if _is_mean_row(r)]
            return _table(header, rows, classes=classes, mean_rows=means, bar_column="jaccard")
        # One table per split and kind (polygon / pixel); those columns then say nothing new.
        cols = [c for c in header if c not in ("kind", "split", "scenes")]
        out = []
        for split, srows in _by_split(rows):
            kinds: dict[str, list[dict]] = {}
            for r in srows:
                kinds.setdefault(r.get("kind") or "", []).append(r)
            n = srows[0].get("scenes")
            tables = []
            for kind, krows in kinds.items():
                means = [i for i, r in enumerate(krows) if _is_mean_row(r)]
                title = {"polygon": "polygon Jaccard (DSTL metric)", "pixel": "pixel Jaccard"}.get(kind, kind)
                tables.append(
                    f"<div><h3>{_e(title or 'scores')}</h3>"
                    f"{_table(cols, krows, classes=classes, mean_rows=means, bar_column='jaccard')}</div>"
                )
            heading = _SPLITS.get(split, split) + (f", {n} scene(s)" if n else "")
            out.append((f"<h3>{_e(heading)}</h3>" if split else "") + f'<div class="cols">{"".join(tables)}</div>')
        if not any(split == "held-out" for split, _ in _by_split(rows)) and any(split for split, _ in _by_split(rows)):
            out.insert(0, _note("no scene was held out: every score below is in-sample (scenes the models "
                                "trained on) and says little about scenes they have not seen"))
        return "".join(out)

    return _section("jaccard", "Jaccard scores", _guard(path, build), _src(path, run))


def _timings_html(run: RunFolder) -> str:
    path = run.timings_csv
    if not path.is_file():
        return _section("timings", "Timings", _note("no timings.csv in this run folder"))

    def build():
        header, rows = _read_csv(path)
        if not rows:
            return _note("timings.csv holds no rows")
        stages: dict[str, dict] = {}
        for r in rows:
            s = stages.setdefault(r.get("stage") or "", {"n": 0, "total": 0.0, "peak": None})
            s["n"] += 1
            sec = _number(r.get("seconds"))
            if sec is not None and not math.isnan(sec):
                s["total"] += sec
            peak = _number(r.get("peak_mib"))
            if peak is not None and not math.isnan(peak):
                s["peak"] = peak if s["peak"] is None else max(s["peak"], peak)
        summary = [
            {
                "stage": stage,
                "count": s["n"],
                "total seconds": s["total"],
                "mean seconds": s["total"] / s["n"],
                "max peak MiB": "" if s["peak"] is None else s["peak"],
            }
            for stage, s in stages.items()
        ]
        total = sum(s["total"] for s in stages.values())
        summary.append({"stage": "all stages", "count": len(rows), "total seconds": total,
                        "mean seconds": "", "max peak MiB": max(
                            (s["peak"] for s in stages.values() if s["peak"] is not None), default="")})
        head = ["stage", "count", "total seconds", "mean seconds", "max peak MiB"]
        table = _table(head, summary, mean_rows=[len(summary) - 1])
        detail = _table(header, rows)
        return (
            f"{table}<details><summary>per scene ({len(rows)} rows)</summary>{detail}</details>"
        )

    return _section("timings", "Timings", _guard(path, build), _src(path, run))


def _failures_html(run: RunFolder) -> tuple[str, int | None]:
    """The failures section and the number of failures (None when unknown)."""
    path = run.failures_csv
    if not path.is_file():
        body = '<span class="banner ok">no failures</span>' + _note("no failures recorded: the run folder has no failures.csv")
        return _section("failures", "Failures", body), 0
    count: list[int | None] = [None]

    def build():
        header, rows = _read_csv(path)
        count[0] = len(rows)
        if not rows:
            return '<span class="banner ok">no failures</span>'
        banner = f'<span class="banner bad">{len(rows)} failure{"s" if len(rows) != 1 else ""}</span>'
        return banner + _table(header, rows, cell_class={"error": "err"})

    body = _guard(path, build)
    return (
        f'<div class="failures">{_section("failures", "Failures", body, _src(path, run))}</div>',
        count[0],
    )


def _offsets_html(run: RunFolder) -> str:
    path = run.offsets_csv
    if not path.is_file():
        return _section("offsets", "Band offsets", _note("no offsets.csv: scenes were not ingested here"))

    def build():
        header, rows = _read_csv(path)
        if not rows:
            return _note("offsets.csv holds no rows")
        intro = ('<p class="note">offset (dx, dy) of each band group against R, '
                 "in R pixels, as found and removed by alignment</p>")
        table = _table(header, rows)
        if len(rows) > 40:
            return f"{intro}<details><summary>{len(rows)} rows</summary>{table}</details>"
        return intro + table

    return _section("offsets", "Band offsets", _guard(path, build), _src(path, run))


def _natural_key(p: Path) -> list:
    """Sort ``band_2`` before ``band_10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.as_posix())]


def _image_uri(path: Path) -> str:
    mime = _IMAGE_TYPES[path.suffix.lower()]
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _figures_html(run: RunFolder) -> tuple[str, int]:
    """Every image under ``RUN/figures``, grouped by subfolder; and how many were embedded."""
    root = run.figures
    if not root.is_dir():
        return _section("figures", "Figures", _note("no figures/ folder in this run folder")), 0
    files = sorted(
        (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in _IMAGE_TYPES
         and not p.name.startswith(".")),  # skip atomic_path's temporary files
        key=lambda p: _natural_key(p.relative_to(root)),
    )
    if not files:
        return _section("figures", "Figures", _note("figures/ holds no images")), 0
    groups: dict[str, list[Path]] = {}
    for p in files:
        rel = p.parent.relative_to(root).as_posix()
        groups.setdefault("" if rel == "." else rel, []).append(p)
    out = []
    n = 0
    # Top-level figures first, then subfolders in name order.
    for group in sorted(groups, key=lambda g: (g != "", g.lower())):
        items = []
        for p in groups[group]:
            try:
                uri = _image_uri(p)
            except OSError as e:
                items.append(f"<figure>{_note(f'could not read {p.name}: {e.strerror}')}</figure>")
                continue
            n += 1
            items.append(
                f'<figure><img src="{uri}" alt="{_e(p.stem)}" decoding="sync">'
                f"<figcaption>{_e(p.stem)}</figcaption></figure>"
            )
        title = f"figures/{group}" if group else "figures"
        out.append(f'<h3>{_e(title)} <span class="src">{len(groups[group])} image'
                   f'{"s" if len(groups[group]) != 1 else ""}</span></h3>'
                   f'<div class="gallery">{"".join(items)}</div>')
    return _section("figures", "Figures", "".join(out), _src(root, run)), n


def _mean_of(rows: list[dict], col: str) -> float | None:
    """The table's mean row value, else the mean of its class rows (NaN ignored); None if none."""
    means = [r for r in rows if _is_mean_row(r)]
    if means and _number(means[-1].get(col)) is not None:
        return _number(means[-1].get(col))
    vals = [_number(r.get(col)) for r in rows if not _is_mean_row(r)]
    vals = [v for v in vals if v is not None and not math.isnan(v)]
    return sum(vals) / len(vals) if vals else None


def _cards_html(info: dict | None, run: RunFolder, n_failures: int | None, n_figures: int) -> str:
    """A row of headline numbers: scenes, mean Jaccard, mean AUC, failures, figures."""
    cards = []
    if info and isinstance(info.get("scenes"), list):
        cards.append(("scenes", str(len(info["scenes"])), ""))
    for path, col, label in ((run.scores_csv, "jaccard", "Jaccard"), (run.auc_csv, "auc", "AUC")):
        if not path.is_file():
            continue
        try:
            header, rows = _read_csv(path)
        except (OSError, UnicodeDecodeError, csv.Error):
            continue
        if col not in header:
            continue
        if "kind" in header:
            rows = [r for r in rows if (r.get("kind") or "polygon") == "polygon"] or rows
        for split, srows in _by_split(rows):
            value = _mean_of(srows, col)
            if value is not None:
                side = {"held-out": "held-out", "in-sample": "in-sample"}.get(split, "")
                cards.append((f"{side} mean {label}".strip(), _fmt(value), "" if side != "in-sample" else "dim"))
    if n_failures is not None:
        cards.append(("failures", str(n_failures), "bad" if n_failures else ""))
    cards.append(("figures", str(n_figures), ""))
    return '<div class="cards">' + "".join(
        f'<div class="card {cls}"><div class="v">{_e(v)}</div><div class="k">{_e(k)}</div></div>'
        for k, v, cls in cards
    ) + "</div>"


# ---------------------------------------------------------------- the page

def render_report(run_dir: str | Path, classes: ClassTable | None = None) -> str:
    """The report of the run folder ``run_dir`` as one self-contained HTML string.

    Reads (each optional) ``run.json``, ``auc.csv``, ``scores.csv``, ``timings.csv``, ``failures.csv``,
    ``offsets.csv`` and every image under ``figures/``; writes nothing.
    """
    from sattag import __version__

    run = RunFolder(Path(run_dir))
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    info, reason = _load_run_json(run)
    if classes is None:
        # The run's own class table (run.json); DSTL's for runs that predate that record.
        records = (info or {}).get("classes")
        classes = ClassTable.from_records(records) if records else DSTL_CLASSES
    failures, n_failures = _failures_html(run)
    figures, n_figures = _figures_html(run)
    sections = [
        ("failures", "Failures", failures),
        ("run", "Run", _run_html(run, info, reason)),
        ("auc", "AUC", _auc_html(run, classes)),
        ("jaccard", "Jaccard", _scores_html(run, classes)),
        ("classes", "Classes", _legend_html(classes)),
        ("figures", "Figures", figures),
        ("offsets", "Offsets", _offsets_html(run)),
        ("timings", "Timings", _timings_html(run)),
    ]
    toc = "".join(f'<a href="#{a}">{_e(t)}</a>' for a, t, _ in sections)
    body = "\n".join(s for _, _, s in sections)
    title = f"sattag report: {run.root.resolve().name}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n"
        f'<body data-images-total="{n_figures}">'
        f"{_header_html(run, info, generated, __version__)}"
        f'<nav class="toc">{toc}</nav>\n<main>'
        f"{_cards_html(info, run, n_failures, n_figures)}\n{body}</main>"
        f"<footer>self-contained report: every image is embedded; nothing is loaded from elsewhere."
        f"</footer><script>{_SCRIPT}</script></body></html>\n"
    )


def write_report(run_dir: str | Path, classes: ClassTable | None = None) -> Path:
    """Write ``RUN/report.html``: one self-contained page describing the run folder ``run_dir``.

    Every section (run config, AUC, Jaccard, figures, offsets, timings, failures, class legend) is
    shown when its files exist and replaced by a note when not; images are embedded as data URIs.
    Returns the path of the written report.
    """
    run = RunFolder(Path(run_dir))
    page = render_report(run.root, classes)
    with atomic_path(run.report_html) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return run.report_html
