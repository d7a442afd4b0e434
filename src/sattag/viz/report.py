"""The HTML report of a run: one self-contained page built from whatever the run folder holds.

Every file is read through its owner's reader (``RunFolder`` names them), so the report knows each
column's type instead of guessing it from the text: numbers are right-aligned with 3 decimals
(whole numbers as integers), an empty number is shown as "–", and the mean row of a score table is
its ``class_id`` 0 (:data:`sattag.evaluate.MEAN_ID`). Every image is embedded as a base64 ``data:``
URI and the style (``report.css``, a resource of this package) is inline, so the page can be
mailed, archived or opened offline; a Content-Security-Policy forbids the browser to fetch anything
else. Each section is optional: it is shown when its files exist, and replaced by a short note when
not. The page needs no JavaScript; a few lines of inline script (``report.js``) only record, on the
``<body>``, how many images the browser decoded (``data-images-ok`` of ``data-images-total``), which
the browser test reads.
"""
from __future__ import annotations

import base64
import datetime as _dt
import functools
import html
import json
import math
import re
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
from pandas.api.types import is_bool_dtype, is_integer_dtype, is_numeric_dtype

from sattag._files import atomic_path
from sattag.classes import DSTL_CLASSES, ClassTable
from sattag.errors import SattagError
from sattag.evaluate import MEAN_ID
from sattag.runfolder import RunFolder

__all__ = ["write_report", "render_report"]

#: Image files embedded from ``RUN/figures`` and their MIME types.
_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}

# Nothing may be fetched from anywhere: images are data: URIs, style and script are inline.
_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)


@functools.lru_cache(maxsize=None)
def _resource(name: str) -> str:
    """A text resource shipped beside this module (``report.css``, ``report.js``)."""
    return resources.files("sattag.viz").joinpath(name).read_text(encoding="utf-8")


# ---------------------------------------------------------------- small helpers

def _e(value: Any) -> str:
    """Escape any value for HTML text or an attribute value."""
    return html.escape("" if value is None else str(value), quote=True)




def _fmt(value: Any, integer: bool = False) -> str:
    """A number with 3 decimals (``integer``: a whole number with thousands separators); "–" for a
    missing one (NaN, <NA>, None)."""
    if value is None or value is pd.NA:
        return "–"
    x = float(value)
    if math.isnan(x):
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if integer and x.is_integer():
        return f"{int(x):,}"
    if x != 0 and abs(x) < 0.01:
        # Areas in DSTL grid units are ~1e-6: 3 decimals would show them as 0.
        return f"{x:.3e}"
    return f"{x:,.3f}"


def _is_number(series: pd.Series) -> bool:
    """A column of numbers (right-aligned, formatted): numeric dtype, booleans excluded."""
    return is_numeric_dtype(series.dtype) and not is_bool_dtype(series.dtype)


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


def _class_cell(name: Any, class_id: Any, classes: ClassTable) -> str:
    """The class name with its colour swatch, looked up by ``class_id``."""
    colour = None
    if class_id is not None and class_id is not pd.NA:
        try:
            colour = classes.by_id(int(class_id)).colour
        except (KeyError, TypeError, ValueError):
            colour = None
    return (_swatch(colour) if colour else "") + _e(name)


def _table(
    frame: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    classes: ClassTable | None = None,
    mean: Sequence[bool] | None = None,
    bar_column: str | None = None,
    cell_class: dict[str, str] | None = None,
) -> str:
    """An HTML table of ``frame``'s ``columns`` (default: all), typed by the frame's dtypes: numbers
    right-aligned with 3 decimals, whole-number columns as integers, text as it is.

    ``classes`` adds a colour swatch to the ``class`` column (by ``class_id``); ``mean`` (one flag per
    row) marks the summary rows, shown in bold; ``bar_column`` (values in [0, 1]) gets a small bar
    beside its number; ``cell_class`` gives a column's cells a CSS class.
    """
    columns = list(frame.columns if columns is None else columns)
    numeric = {c for c in columns if _is_number(frame[c])}
    integer = {c for c in numeric if is_integer_dtype(frame[c].dtype)}
    flags = [False] * len(frame) if mean is None else [bool(m) for m in mean]
    cell_class = cell_class or {}
    ids = frame["class_id"].tolist() if "class_id" in frame.columns else [None] * len(frame)
    out = ["<table><thead><tr>"]
    for col in columns:
        cls = ' class="num"' if col in numeric else ""
        out.append(f"<th{cls}>{_e(col)}</th>")
    out.append("</tr></thead><tbody>")
    values = {c: frame[c].tolist() for c in columns}
    for i in range(len(frame)):
        out.append('<tr class="mean">' if flags[i] else "<tr>")
        for col in columns:
            value = values[col][i]
            if col == "class" and classes is not None:
                out.append(f"<td>{_class_cell(value, ids[i], classes)}</td>")
            elif col in numeric:
                text = _e(_fmt(value, col in integer))
                x = None if value is None or value is pd.NA else float(value)
                if col == bar_column and x is not None and 0 <= x <= 1 and not flags[i]:
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


def _guard(path: Path, build: Callable[[], str]) -> str:
    """Run ``build()``; a file that cannot be read becomes a note instead of a failed report."""
    try:
        return build()
    except SattagError as e:  # the owner's reader: the file and the fault
        return _note(f"could not read {path.name}: {type(e).__name__}: {e.fault}")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        return _note(f"could not read {path.name}: {type(e).__name__}: {e}")


def _read(path: Path, reader: Callable[[Path], Any]) -> Any:
    """``reader(path)``, or None when the file cannot be read (the section says why)."""
    try:
        return reader(path)
    except (SattagError, OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None


# ---------------------------------------------------------------- sections

def _load_run_json(run: RunFolder) -> tuple[dict | None, str | None]:
    """``run.json`` (``sattag.engine.records.read_run_json``) as a dict, or (None, a reason)."""
    from sattag.engine.records import read_run_json

    if not run.run_json.is_file():
        return None, "no run.json in this run folder"
    try:
        return read_run_json(run.run_json), None
    except SattagError as e:
        return None, f"could not read run.json: {e.fault}"


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


#: How each side of a split is named in the report: held-out first, it is the figure to trust.
_SPLITS = {
    "held-out": "held-out scenes (never seen by the models)",
    "in-sample": "in-sample: the models' training scenes",
}


def _by_split(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Rows grouped by their ``split``, held-out first, then in-sample, then any other in file order."""
    found = list(dict.fromkeys(frame["split"].tolist()))
    order = [k for k in _SPLITS if k in found] + [k for k in found if k not in _SPLITS]
    return [(k, frame[frame["split"] == k].reset_index(drop=True)) for k in order]


def _filled(frame: pd.DataFrame, col: str) -> bool:
    """The column holds something: a number that is not missing, or text that is not empty."""
    s = frame[col]
    return bool(s.notna().any()) if _is_number(s) else bool((s.astype(str) != "").any())


def _auc_html(run: RunFolder, classes: ClassTable) -> str:
    from sattag.learn import read_auc

    path = run.auc_csv
    if not path.is_file():
        return _section("auc", "Model AUC", _note("no auc.csv: models were not trained in this run"))

    def build():
        table = read_auc(path)
        if table.empty:
            return _note("auc.csv holds no rows")
        out = []
        for split, part in _by_split(table):
            how = part["measured_on"].iloc[0]
            title = {"held-out": "held-out scenes: a balanced sample of scenes the models never saw",
                     "in-sample": "in-sample: 90/10 split of the training scenes' sampled pixels "
                                  "(neighbouring pixels leak: flatters the models)"}.get(split, how or split)
            # What a split does not measure (a held-out sample trains nothing) is left out, not shown empty.
            cols = [c for c in part.columns if c not in ("split", "measured_on") and _filled(part, c)]
            out.append(f"<div><h3>{_e(title)}</h3>{_table(part, cols, classes=classes, bar_column='auc')}</div>")
        return f'<div class="cols">{"".join(out)}</div>'

    return _section("auc", "Model AUC", _guard(path, build), _src(path, run))


def _models_html(run: RunFolder, classes: ClassTable) -> str:
    """What the models see (feature set), the thresholds tuned for them, and what they use most."""
    from sattag.learn import read_card

    path = run.models / "card.json"
    if not path.is_file():
        return _section("models", "Models", _note("no models/card.json: models were not trained in this run"))

    def build():
        card = read_card(run.models)
        features = card.get("features") or {"name": "spectra", "columns": card.get("bands", [])}
        scales = features.get("scales") or []
        level = card.get("level", "pixel")
        out = [f"<p>Models per <b>{_e(level)}</b>"
               + (" (one row per spectral cluster: its features' mean and spread, shape, neighbours)"
                  if level == "cluster" else "") + "</p>",
               f"<p>Features: <b>{_e(features.get('name'))}</b>"
               + (f" (scales {_e(', '.join(map(str, scales)))} px)" if scales else "")
               + f", {len(features.get('columns') or [])} per {_e(level)}: "
               + f"<code>{_e(' '.join(features.get('columns') or []))}</code></p>"]
        split = card.get("split") or {}
        if split:
            out.append(f"<p>Trained on {len(split.get('train', []))} scene(s); held out "
                       f"{len(split.get('held_out', []))}: {_e(', '.join(split.get('held_out', [])) or 'none')}.</p>")
        thresholds = card.get("thresholds")
        if thresholds:
            frame = pd.DataFrame(thresholds)
            n = int(frame["validation_scenes"].iloc[0]) if "validation_scenes" in frame else 0
            k = int(frame["folds"].iloc[0]) if "folds" in frame else 1
            cols = [c for c in ("class_id", "class", "threshold", "jaccard", "jaccard_at_0.5") if c in frame]
            how = f"{n} validation scene(s) in {k} fold(s)" if k > 1 else f"{n} validation scene(s)"
            out.append(f"<div><h3>{_e(f'thresholds tuned for the Jaccard on {how} (pixel Jaccard there at the threshold and at 0.5)')}"
                       f"</h3>{_table(frame, cols, classes=classes)}</div>")
        else:
            out.append(_note("thresholds not tuned (one training scene, or [predict] tune_thresholds = false): "
                             "0.5 unless the configuration sets them"))
        rows = []
        for m in card.get("models", []):
            gain = m.get("importance_gain") or {}
            total = sum(gain.values()) or 1.0
            top = sorted(gain.items(), key=lambda kv: -kv[1])[:6]
            rows.append({"class_id": m["class_id"], "class": m.get("class", ""),
                         "most used features (share of gain)": ", ".join(f"{k} {v / total:.0%}" for k, v in top)})
        if rows:
            out.append(f"<div><h3>what each model uses most</h3>{_table(pd.DataFrame(rows), classes=classes)}</div>")
        pairs = [{"pair": p.get("pair", ""), "pixels (first / second)": f"{p.get('n_first', 0)} / {p.get('n_second', 0)}",
                  "validation AUC": p.get("auc"), "skipped": p.get("skipped") or ""}
                 for p in card.get("pairs") or []]
        if pairs:
            out.append("<div><h3>pairwise models (decide where both classes' models fire; what they changed: "
                       f"the 'pair' rows of each scene's rules)</h3>{_table(pd.DataFrame(pairs))}</div>")
        return "".join(out)

    return _section("models", "Models", _guard(path, build), _src(path, run))


def _scores_html(run: RunFolder, classes: ClassTable) -> str:
    from sattag.evaluate import read_scores

    path = run.scores_csv
    if not path.is_file():
        return _section("jaccard", "Jaccard", _note("no scores.csv: the run was not scored against truth"))

    def build():
        table = read_scores(path)
        if table.empty:
            return _note("scores.csv holds no rows")
        # One table per split and kind (polygon / pixel); those columns then say nothing new.
        cols = [c for c in table.columns if c not in ("kind", "split", "scenes")]
        splits = _by_split(table)
        out = []
        for split, part in splits:
            tables = []
            for kind in dict.fromkeys(part["kind"].tolist()):
                rows = part[part["kind"] == kind].reset_index(drop=True)
                title = {"polygon": "polygon Jaccard (DSTL metric)", "pixel": "pixel Jaccard"}.get(kind, kind)
                tables.append(
                    f"<div><h3>{_e(title or 'scores')}</h3>"
                    f"{_table(rows, cols, classes=classes, mean=rows['class_id'] == MEAN_ID, bar_column='jaccard')}"
                    "</div>")
            heading = f"{_SPLITS.get(split, split)}, {int(part['scenes'].iloc[0])} scene(s)"
            out.append(f"<h3>{_e(heading)}</h3>" + f'<div class="cols">{"".join(tables)}</div>')
        if "held-out" not in dict(splits):
            out.insert(0, _note("no scene was held out: every score below is in-sample (scenes the models "
                                "trained on) and says little about scenes they have not seen"))
        return "".join(out)

    return _section("jaccard", "Jaccard scores", _guard(path, build), _src(path, run))


def _timings_html(run: RunFolder) -> str:
    from sattag.engine.records import read_timings

    path = run.timings_csv
    if not path.is_file():
        return _section("timings", "Timings", _note("no timings.csv in this run folder"))

    def build():
        timings = read_timings(path)
        if timings.empty:
            return _note("timings.csv holds no rows")
        by_stage = timings.groupby("stage", sort=False)
        summary = pd.DataFrame({
            "stage": list(by_stage.groups),
            "count": by_stage.size().to_numpy(),
            "total seconds": by_stage["seconds"].sum().to_numpy(),
            "mean seconds": by_stage["seconds"].mean().to_numpy(),
            "max peak MiB": by_stage["peak_mib"].max().to_numpy(),
        })
        total = pd.DataFrame({"stage": ["all stages"], "count": [len(timings)],
                              "total seconds": [timings["seconds"].sum()], "mean seconds": [float("nan")],
                              "max peak MiB": [timings["peak_mib"].max()]})
        summary = pd.concat([summary, total], ignore_index=True).astype({"stage": "str", "count": "int64"})
        table = _table(summary, mean=[False] * (len(summary) - 1) + [True])
        detail = _table(timings)
        return f"{table}<details><summary>per scene ({len(timings)} rows)</summary>{detail}</details>"

    return _section("timings", "Timings", _guard(path, build), _src(path, run))


def _failures_html(run: RunFolder) -> tuple[str, int | None]:
    """The failures section and the number of failures (None when unknown)."""
    from sattag.engine.records import read_failures

    path = run.failures_csv
    if not path.is_file():
        body = '<span class="banner ok">no failures</span>' + _note("no failures recorded: the run folder has no failures.csv")
        return _section("failures", "Failures", body), 0
    count: list[int | None] = [None]

    def build():
        failures = read_failures(path)
        count[0] = len(failures)
        if failures.empty:
            return '<span class="banner ok">no failures</span>'
        n = len(failures)
        banner = f'<span class="banner bad">{n} failure{"s" if n != 1 else ""}</span>'
        return banner + _table(failures, cell_class={"error": "err"})

    body = _guard(path, build)
    return (
        f'<div class="failures">{_section("failures", "Failures", body, _src(path, run))}</div>',
        count[0],
    )


def _offsets_html(run: RunFolder) -> str:
    from sattag.ingest import read_offsets

    path = run.offsets_csv
    if not path.is_file():
        return _section("offsets", "Band offsets", _note("no offsets.csv: scenes were not ingested here"))

    def build():
        offsets = read_offsets(path)
        if offsets.empty:
            return _note("offsets.csv holds no rows")
        intro = ('<p class="note">offset (dx, dy) of each band group against R, '
                 "in R pixels, as found and removed by alignment</p>")
        table = _table(offsets)
        if len(offsets) > 40:
            return f"{intro}<details><summary>{len(offsets)} rows</summary>{table}</details>"
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


def _mean_of(frame: pd.DataFrame, col: str) -> float | None:
    """The table's mean row value (``class_id`` 0), else the mean of its class rows (NaN ignored);
    None if there is none."""
    is_mean = frame["class_id"] == MEAN_ID
    means = frame.loc[is_mean, col].dropna()
    if len(means):
        return float(means.iloc[-1])
    values = frame.loc[~is_mean, col].dropna()
    return float(values.mean()) if len(values) else None


def _cards_html(info: dict | None, run: RunFolder, n_failures: int | None, n_figures: int) -> str:
    """A row of headline numbers: scenes, mean Jaccard and AUC (held-out first), failures, figures."""
    from sattag.evaluate import read_scores
    from sattag.learn import read_auc

    cards = []
    if info and isinstance(info.get("scenes"), list):
        cards.append(("scenes", str(len(info["scenes"])), ""))
    for path, reader, col, label in ((run.scores_csv, read_scores, "jaccard", "Jaccard"),
                                     (run.auc_csv, read_auc, "auc", "AUC")):
        table = _read(path, reader) if path.is_file() else None
        if table is None:
            continue
        if "kind" in table.columns:  # the DSTL metric is the headline
            table = table[table["kind"] == "polygon"] if (table["kind"] == "polygon").any() else table
        for split, part in _by_split(table):
            value = _mean_of(part, col)
            if value is not None:
                side = split if split in _SPLITS else ""
                cards.append((f"{side} mean {label}".strip(), _fmt(value), "dim" if side == "in-sample" else ""))
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

    Reads (each optional, each through its owner's reader) ``run.json``, ``auc.csv``, ``scores.csv``,
    ``timings.csv``, ``failures.csv``, ``offsets.csv`` and every image under ``figures/``; writes nothing.
    ``classes``: default the run's own class table (``run.json``; DSTL's for a run without one).
    """
    from sattag import __version__
    from sattag.engine.records import recorded_classes

    run = RunFolder(Path(run_dir))
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    info, reason = _load_run_json(run)
    if classes is None:
        try:
            classes = recorded_classes(info or {})
        except SattagError:
            classes = DSTL_CLASSES
    failures, n_failures = _failures_html(run)
    figures, n_figures = _figures_html(run)
    sections = [
        ("failures", "Failures", failures),
        ("run", "Run", _run_html(run, info, reason)),
        ("jaccard", "Jaccard", _scores_html(run, classes)),
        ("auc", "AUC", _auc_html(run, classes)),
        ("models", "Models", _models_html(run, classes)),
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
        f"<title>{_e(title)}</title><style>{_resource('report.css')}</style></head>\n"
        f'<body data-images-total="{n_figures}">'
        f"{_header_html(run, info, generated, __version__)}"
        f'<nav class="toc">{toc}</nav>\n<main>'
        f"{_cards_html(info, run, n_failures, n_figures)}\n{body}</main>"
        f"<footer>self-contained report: every image is embedded; nothing is loaded from elsewhere."
        f"</footer><script>{_resource('report.js')}</script></body></html>\n"
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
