"""scale: one big generated scene end to end through the CLI, beside a DSTL-size scene, 1 and 2 workers.

What issue 16 asks, measured in one run: a generated 20 000 x 20 000 scene end to end (ingest,
features, clusters, predict, masks, polygons) on the 2-core, 24 GiB machine with

- peak memory at most 2 GiB per worker,
- seconds per megapixel within 1.3x of a DSTL-size scene's,
- 1 -> 2 workers on that one scene at least 1.7x faster.

Everything runs through the real CLI in subprocesses, as a user would:

1. ``sattag generate TRAIN --scenes 3 --train 3 --size 800`` and ``sattag train TRAIN --out MODELS``
   with a small configuration (``CONFIG`` below: 20 trees of depth 8, 5 000 px in and out per class):
   models for the generated DSTL band layout (20 bands), which every generated scene has. Not what
   is measured: timed in the note only.
2. ``sattag generate SCENE --scenes 1 --train 0 --size N`` for the big scene (N =
   ``$SATTAG_BENCH_SCALE_PX``, default 20 000; quick 2 500) and for the reference scene (DSTL size,
   the generator's default ~3 391 px, or ``$SATTAG_BENCH_SCALE_REF_PX``; quick 1 200), same seed.
3. For each scene and W in 1, 2, in a fresh run folder (deleted afterwards, so that one stack at a
   time is on disk): ``sattag ingest SCENE --out RUN --workers W`` then ``sattag predict SCENE
   --models MODELS/models --out RUN --workers W`` (predict finds the complete stack and does not
   ingest again; it computes features, clusters, per-cluster probabilities, masks and polygons).
   End to end = the wall seconds of the two commands (interpreter start and LocalCluster start
   included: what a user waits for); seconds per megapixel use the stack's R-grid pixels.

Memory: the per-worker peak is the max of ``peak_mib`` (the worker process's VmHWM when each task
ended) over every task row of ``RUN/timings.csv`` (rows of scene ``*`` run on the client), read
after each command (each command rewrites the file). The client process's own peak (VmHWM) and the
peak of the whole process tree's summed RSS are sampled every 0.2 s and given in the note.

The configuration turns the cluster figures off (``[figures] cluster_figure_scenes = 0``: drawing is
not in the list above) and sets ``[predict] tile_px = 2048`` when ``sattag.config.PredictConfig``
has that field (predict splitting a scene larger than that into tile tasks spread over the
workers); without it, predict runs a scene as one task, and the figures show it. The 1-min load
average is sampled too: on a shared machine other processes take cores from the workers, and the
1 -> 2 workers figure means little when the load is above the core count. The workers keep the default ``[engine] memory_limit``
(4 GiB): a task that needs more is killed by Dask, and the row says so instead of a time.

Environment: ``SATTAG_BENCH_SCALE_PX`` (big scene side, e.g. 8000 when time is short),
``SATTAG_BENCH_SCALE_REF_PX`` (reference side), ``SATTAG_BENCH_SCALE_TMP`` (where the work folder
goes; default the system temp dir). Free disk is checked before each scene is generated
(~``BYTES_PER_PX`` per R-grid pixel: inputs, the float32 stack, outputs); the work folder is deleted
at the end.

Run: ``.venv/bin/python benchmarks/run.py --only scale [--quick]``.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import row  # noqa: E402

BENCH = "scale"
ROOT = Path(__file__).resolve().parents[1]
SATTAG = str(Path(sys.executable).parent / "sattag")
SEED = 16
WORKERS = (1, 2)
#: Disk per R-grid pixel to ask for before generating a scene. Measured at 2 500 px: inputs ~5 B/px,
#: the stack (20 float32 bands, compressed) ~33 B/px, clusters + masks + polygons ~6 B/px.
BYTES_PER_PX = 60
#: quick / full: big scene side, reference side (None: the generator's DSTL default)
SIZES = {True: (2500, 1200), False: (20000, None)}
#: Short training (the models are not what is measured), no cluster figures.
CONFIG = """\
[model]
n_trees = 20
max_depth = 8

[sample]
n_in = 5000
n_out = 5000

[figures]
cluster_figure_scenes = 0
"""
TILE_PX = 2048
#: The side of a full-size generated DSTL scene (R grid), about.
DSTL_PX = 3400


def _max_shift(size: int) -> int:
    """The alignment search range (reference px) for a generated scene of ``size`` px: the ingest
    default (80 px at DSTL's size) scaled with the size, plus a tenth."""
    return int(math.ceil(80 * size / DSTL_PX * 1.1))
#: Targets of issue 16.
PEAK_TARGET_GIB = 2.0
PER_MPX_TARGET = 1.3
SPEEDUP_TARGET = 1.7


def _say(text: str) -> None:
    print(f"[bench scale] {text}", file=sys.stderr, flush=True)


def _env_int(name: str) -> int | None:
    v = os.environ.get(name, "").strip()
    return int(v) if v else None


def _tile_field() -> bool:
    """Whether this sattag's ``[predict]`` section has ``tile_px`` (predict tiling a big scene)."""
    from sattag.config import PredictConfig

    return "tile_px" in {f.name for f in dataclasses.fields(PredictConfig)}


# ------------------------------------------------------------------------------------ subprocesses
def _tree_rss(proc) -> int:
    """Summed RSS (bytes) of a psutil process and all its descendants (0 for any that vanished)."""
    import psutil

    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _vmhwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _sattag(args: list[str], log: Path) -> dict:
    """Run ``sattag ARGS``; wall seconds, return code, client peak and process-tree peak (bytes)."""
    import psutil

    with open(log, "w") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen([SATTAG, *args], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        ps = psutil.Process(p.pid)
        client = tree = 0
        load = 0.0
        while p.poll() is None:
            load = max(load, os.getloadavg()[0])
            client = max(client, _vmhwm(p.pid))
            tree = max(tree, _tree_rss(ps))
            time.sleep(0.2)
        wall = time.perf_counter() - t0
    return {"wall": wall, "rc": p.returncode, "client": client, "tree": tree, "load": load,
            "tail": log.read_text(errors="replace")[-1500:]}


def _check(res: dict, what: str) -> None:
    if res["rc"] != 0:
        raise RuntimeError(f"{what} exited {res['rc']}:\n{res['tail']}")


def _timings(run: Path) -> list[dict]:
    path = run / "timings.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _failures(run: Path) -> list[dict]:
    path = run / "failures.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _task_peak_mib(timings: list[dict]) -> float:
    """Max worker peak over the task rows (scene ``*``: a step run on the client)."""
    return max((float(t["peak_mib"]) for t in timings if t["scene"] != "*" and t["peak_mib"]),
               default=float("nan"))


def _stage_summary(tasks: list[dict]) -> str:
    """``stage n x s`` per stage, in order of first appearance (e.g. ``predict tiles 4 x 12.3 s``)."""
    by: dict[str, list[float]] = {}
    for t in tasks:
        by.setdefault(t["stage"], []).append(float(t["seconds"]))
    return ", ".join(f"{st} {len(v)} x {sum(v):.1f} s" for st, v in by.items())


# ------------------------------------------------------------------------------------------ steps
def _free_disk(where: Path, px: int, what: str) -> None:
    free = shutil.disk_usage(where).free
    need = px * BYTES_PER_PX
    if free < need:
        raise RuntimeError(f"{what}: {free / 2**30:.1f} GiB free under {where}, ~{need / 2**30:.1f} GiB needed "
                           f"({BYTES_PER_PX} B per px); set SATTAG_BENCH_SCALE_TMP or SATTAG_BENCH_SCALE_PX")


def _generate(out: Path, size: int | None, logs: Path) -> dict:
    """One unlabelled scene; its side is ``size`` (None: DSTL size)."""
    _free_disk(out.parent, (size or 3391) ** 2, f"scene of {size or 'DSTL'} px")
    args = ["generate", str(out), "--scenes", "1", "--train", "0", "--seed", str(SEED), "--quiet"]
    if size:
        args += ["--size", str(size)]
    res = _sattag(args, logs / f"generate-{size or 'dstl'}.log")
    _check(res, f"sattag generate --size {size}")
    return res


def _stack_mpx(run: Path) -> tuple[float, int, int]:
    import rasterio

    # one task: stacks/<scene>.tif; a scene stacked in parts: stacks/<scene>.vrt over stacks/<scene>.parts/
    stack = next(p for p in sorted((run / "stacks").iterdir()) if p.suffix in (".tif", ".vrt"))
    with rasterio.open(stack) as src:
        return src.width * src.height / 1e6, src.width, src.height


def _end_to_end(data: Path, models: Path, run: Path, workers: int, config: Path, logs: Path, tag: str) -> dict:
    """``sattag ingest`` then ``sattag predict`` of one scene in a fresh run folder; its figures."""
    if run.exists():
        shutil.rmtree(run)
    common = ["--out", str(run), "--workers", str(workers), "--config", str(config), "--quiet"]
    out = {"workers": workers, "ok": False, "error": ""}
    ing = _sattag(["ingest", str(data), *common], logs / f"ingest-{tag}-w{workers}.log")
    t_ing = _timings(run)
    out.update(ingest=ing["wall"], ingest_peak=_task_peak_mib(t_ing), client=ing["client"], tree=ing["tree"],
               load=ing["load"])
    if ing["rc"] != 0:
        out["error"] = f"ingest exited {ing['rc']}: " + "; ".join(f"{f['stage']}: {f['error']}" for f in _failures(run))
        return out
    out["mpx"], out["width"], out["height"] = _stack_mpx(run)
    pred = _sattag(["predict", str(data), "--models", str(models), *common], logs / f"predict-{tag}-w{workers}.log")
    t_pred = _timings(run)
    failures = _failures(run)
    out.update(predict=pred["wall"], predict_peak=_task_peak_mib(t_pred), client=max(out["client"], pred["client"]),
               tree=max(out["tree"], pred["tree"]), load=max(out["load"], pred["load"]))
    tasks = [t for t in t_pred if t["stage"] != "ingest" and t["scene"] != "*"]
    out["predict_tasks"] = len(tasks)
    out["predict_task_s"] = sum(float(t["seconds"]) for t in tasks)
    out["predict_stages"] = _stage_summary(tasks)
    if pred["rc"] != 0 or failures:
        out["error"] = (f"predict exited {pred['rc']}: "
                        + "; ".join(f"{f['stage']}: {f['error']}" for f in failures)[:400])
        return out
    out["ok"] = True
    out["wall"] = out["ingest"] + out["predict"]
    out["s_per_mpx"] = out["wall"] / out["mpx"]
    out["peak"] = max(out["ingest_peak"], out["predict_peak"])
    return out


def run(quick: bool) -> list[dict]:
    big, ref = SIZES[quick]
    big = _env_int("SATTAG_BENCH_SCALE_PX") or big
    ref = _env_int("SATTAG_BENCH_SCALE_REF_PX") or ref
    tiled = _tile_field()
    parent = os.environ.get("SATTAG_BENCH_SCALE_TMP") or None
    work = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=parent))
    logs = work / "logs"
    logs.mkdir()
    results: dict[str, dict[int, dict]] = {}
    try:
        config = work / "scale.toml"
        config.write_text(CONFIG + (f"\n[predict]\ntile_px = {TILE_PX}\n" if tiled else ""))
        _say(f"work folder {work}; big scene {big} px, reference {ref or 'DSTL size'}; "
             f"[predict] tile_px {'= ' + str(TILE_PX) if tiled else 'not a field yet (one task per scene)'}")
        train_data, models = work / "train-data", work / "models-run"
        gen = _sattag(["generate", str(train_data), "--scenes", "3", "--train", "3", "--size", "800",
                       "--seed", str(SEED), "--quiet"], logs / "generate-train.log")
        _check(gen, "sattag generate (training data)")
        tr = _sattag(["train", str(train_data), "--out", str(models), "--config", str(config), "--quiet"],
                     logs / "train.log")
        _check(tr, "sattag train")
        train_s = gen["wall"] + tr["wall"]
        _say(f"models trained in {train_s:.0f} s (generate + train, not measured below)")
        gens = {}
        for tag, size in (("ref", ref), ("big", big)):
            data = work / f"scene-{tag}"
            gens[tag] = _generate(data, size, logs)
            _say(f"{tag}: generated {size or 'DSTL size'} px in {gens[tag]['wall']:.0f} s")
            results[tag] = {}
            scene_config = config
            if size and size > DSTL_PX:
                # The generator keeps a scene's 1 km footprint at any size, so its band offsets grow
                # with the size (A: up to 80 full-size px, ~470 px at 20 000): the alignment's search
                # range has to follow (the ingest default, 80 px, is DSTL's).
                scene_config = work / f"scale-{tag}.toml"
                scene_config.write_text(config.read_text() + f"\n[ingest]\nmax_shift_px = {_max_shift(size)}\n")
            for w in WORKERS:
                r = _end_to_end(data, models / "models", work / f"run-{tag}-w{w}", w, scene_config, logs, tag)
                results[tag][w] = r
                shutil.rmtree(work / f"run-{tag}-w{w}", ignore_errors=True)
                _say(f"{tag} {w} worker(s): " + (
                    f"ingest {r['ingest']:.1f} s + predict {r['predict']:.1f} s = {r['wall']:.1f} s, "
                    f"{r['s_per_mpx']:.2f} s/Mpx ({r['mpx']:.1f} Mpx), worker peak {r['peak']:.0f} MiB, "
                    f"tree peak {r['tree'] / 2**30:.2f} GiB" if r["ok"] else f"FAILED: {r['error']}"))
            shutil.rmtree(data, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _rows(big, ref, tiled, train_s, gens, results)


# ------------------------------------------------------------------------------------------ rows
def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _rows(big: int, ref: int | None, tiled: bool, train_s: float, gens: dict, results: dict) -> list[dict]:
    rows = []
    setup = (f"predict tile_px = {TILE_PX}" if tiled else "no [predict] tile_px field: one predict task per scene") \
        + "; cluster figures off; models: 20 trees depth 8, 5 000 px per side, trained in " \
        + f"{train_s:.0f} s (not counted)"
    names = {"big": f"{big} px scene", "ref": f"DSTL-size scene ({ref} px)" if ref else "DSTL-size scene"}
    for tag in ("ref", "big"):
        for w, r in results[tag].items():
            tool = f"sattag ingest + predict, {names[tag]}, {w} worker(s)"
            if not r["ok"]:
                rows.append(row(BENCH, tool, 0, r.get("predict_peak", r.get("ingest_peak", float("nan"))) / 1024,
                                metric="FAILED", note=f"{r['error']}; {setup}"))
                continue
            rows.append(row(
                BENCH, tool, r["wall"], r["peak"] / 1024,
                metric=f"{r['s_per_mpx']:.3f} s/Mpx ({r['width']} x {r['height']} = {r['mpx']:.1f} Mpx)",
                note=(f"ingest {r['ingest']:.1f} s (worker peak {r['ingest_peak']:.0f} MiB), predict {r['predict']:.1f} s "
                      f"({r['predict_tasks']} task{'' if r['predict_tasks'] == 1 else 's'}, {r['predict_task_s']:.1f} task-s: {r['predict_stages']}; worker peak "
                      f"{r['predict_peak']:.0f} MiB); client peak {r['client'] / 2**30:.2f} GiB, whole process tree "
                      f"peak {r['tree'] / 2**30:.2f} GiB; 1-min load average up to {r['load']:.1f} on {os.cpu_count()} cores "
                      f"(other processes than this run's count too); scene generated in {gens[tag]['wall']:.0f} s (not counted); "
                      f"peak_gib = max worker peak_mib in timings.csv; {setup}")))
    b = results["big"]
    ok = {w: r for w, r in b.items() if r["ok"]}
    # peak memory per worker on the big scene
    peaks = [max(r.get("ingest_peak", float("nan")), r.get("predict_peak", float("nan"))) for r in b.values()]
    peaks = [p for p in peaks if p == p]
    if peaks:
        p = max(peaks)
        rows.append(row(BENCH, f"sattag peak memory per worker, {big} px scene", 0, p / 1024,
                        metric=f"{p:.0f} MiB ({_verdict(p / 1024 <= PEAK_TARGET_GIB and len(ok) == len(b))})",
                        target=f"<= {PEAK_TARGET_GIB:g} GiB/worker",
                        note="max peak_mib over every ingest and predict task, 1 and 2 workers"
                             + ("" if len(ok) == len(b) else "; a run FAILED (see its row)")
                             + f"; {big} px; {setup}"))
    # seconds per megapixel against the DSTL-size scene
    per = []
    for w in WORKERS:
        rb, rr = b.get(w, {}), results["ref"].get(w, {})
        if rb.get("ok") and rr.get("ok"):
            per.append((w, rb["s_per_mpx"] / rr["s_per_mpx"], rb, rr))
    if per:
        w, ratio, rb, rr = per[0]
        others = "; ".join(f"{w2} workers: {x:.2f}x ({r2['s_per_mpx']:.3f} vs {q2['s_per_mpx']:.3f} s/Mpx)"
                           for w2, x, r2, q2 in per[1:])
        rows.append(row(BENCH, f"sattag s/Mpx, {big} px vs DSTL-size scene", rb["wall"], rb["peak"] / 1024,
                        metric=f"{ratio:.2f}x ({_verdict(ratio <= PER_MPX_TARGET)}), {w} worker",
                        target=f"within {PER_MPX_TARGET:g}x of DSTL-size s/Mpx",
                        note=f"{rb['s_per_mpx']:.3f} s/Mpx ({rb['mpx']:.0f} Mpx) vs {rr['s_per_mpx']:.3f} s/Mpx "
                             f"({rr['mpx']:.1f} Mpx), end to end incl. ~CLI + LocalCluster start per command"
                             + (f"; {others}" if others else "") + f"; {big} px; {setup}"))
    else:
        rows.append(row(BENCH, f"sattag s/Mpx, {big} px vs DSTL-size scene", 0, 0, metric="n/a: a run FAILED",
                        target=f"within {PER_MPX_TARGET:g}x of DSTL-size s/Mpx", note=f"{big} px"))
    # 1 -> 2 workers on the big scene
    if len(ok) == 2:
        r1, r2 = ok[1], ok[2]
        x = r1["wall"] / r2["wall"]
        rows.append(row(BENCH, f"sattag scaling 1 -> 2 workers, {big} px scene", r2["wall"], r2["peak"] / 1024,
                        metric=f"{x:.2f}x wall time ({_verdict(x >= SPEEDUP_TARGET)})",
                        target=f">= {SPEEDUP_TARGET:g}x 1->2 workers",
                        note=f"end to end {r1['wall']:.1f} -> {r2['wall']:.1f} s; ingest {r1['ingest']:.1f} -> "
                             f"{r2['ingest']:.1f} s ({r1['ingest'] / r2['ingest']:.2f}x), predict {r1['predict']:.1f} -> "
                             f"{r2['predict']:.1f} s ({r1['predict'] / r2['predict']:.2f}x, {r2['predict_tasks']} "
                             f"tasks); task-seconds {r1['predict_task_s']:.0f} -> {r2['predict_task_s']:.0f} (grow when the workers "
                             f"compete for cores); 1-min load average up to {r1['load']:.1f} / {r2['load']:.1f} on "
                             f"{os.cpu_count()} cores; {big} px; {setup}"))
    else:
        rows.append(row(BENCH, f"sattag scaling 1 -> 2 workers, {big} px scene", 0, 0, metric="n/a: a run FAILED",
                        target=f">= {SPEEDUP_TARGET:g}x 1->2 workers", note=f"{big} px"))
    return rows


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    for r in run(ap.parse_args().quick):
        print(r)
