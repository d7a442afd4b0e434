"""cost: what the default pipeline costs at DSTL size, beside the seed's pipeline in the same run.

Two generated full-size DSTL scenes (seed 3, both labelled, both training: ``--holdout 0``), run end to
end in one process each (``sattag run DATA --out RUN --workers 0 --quiet --holdout 0``):

- **seed pipeline**: per-pixel models on the 20 band values, applied to each cluster's mean
  spectrum, threshold 0.5, no pairs (``bench_quality.SEED_CONFIG``): the time "today" meant when the
  quality issue was filed;
- **sattag defaults**: features, object-level models with relit rows, tuned thresholds, pairs.

Both configurations run once on two small scenes first, untimed (numba's kernels compiled into its
cache). Per run, from its ``timings.csv``: the training seconds (every ``train*`` and ``tune thresholds``
stage: 10 classes, the fold models, the pairs), each scene's ``predict`` seconds (features included)
and the run's peak resident memory. Targets (issue "Better tagging than per-pixel spectra"): predicting
a full-size scene at most 2x the seed's time; training all 10 classes under 3 minutes on 2 cores.

Run: ``.venv/bin/python benchmarks/run.py --only cost [--quick]``.
"""
from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measure, row  # noqa: E402
from bench_quality import SEED_CONFIG, generate, run_cli  # noqa: E402

BENCH = "cost"
FULL = dict(n_scenes=2, size=None, seed=3)
QUICK = dict(n_scenes=2, size=400, seed=3)
TRAIN_LIMIT_S = 180.0
PREDICT_RATIO = 2.0


def _generate(data: Path, p: dict) -> None:
    if p["size"] is None:  # full size: the generator's DSTL grid, no --size
        from sattag.synth import generate_dataset

        generate_dataset(data, n_scenes=p["n_scenes"], n_train=p["n_scenes"], seed=p["seed"])
    else:
        generate(data, p["n_scenes"], p["size"], p["seed"])


def _timings(run: Path) -> dict:
    """Training seconds, predict seconds per scene and peak MiB from a run's ``timings.csv``."""
    train, predict, peak = 0.0, {}, 0
    with open(run / "timings.csv") as f:
        for r in csv.DictReader(f):
            s = float(r["seconds"])
            if r["stage"].startswith("train") or r["stage"] == "tune thresholds":
                train += s
            elif r["stage"] == "predict":
                predict[r["scene"]] = s
            peak = max(peak, int(r["peak_mib"] or 0))
    return {"train_s": train, "predict_s": predict, "peak_mib": peak}


def _one(data: Path, out: Path, config: str | None) -> dict:
    args = ["run", str(data), "--out", str(out), "--workers", "0", "--quiet", "--holdout", "0"]
    if config is not None:
        cfg = out.parent / f"{out.name}.toml"
        cfg.write_text(config)
        args += ["--config", str(cfg)]
    res = run_cli(args, out.parent / f"{out.name}.log")
    if res["rc"] != 0:
        raise RuntimeError(f"sattag run exited {res['rc']}; see {out.parent / (out.name + '.log')}")
    return {**res, **_timings(out)}


def run(quick: bool) -> list[dict]:
    p = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="sattag-bench-cost-") as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        _, gen_s, _ = measure(_generate, data, p)
        # Both pipelines once on small scenes first, untimed: numba compiles a kernel into its cache on
        # first use after the code changed (~15 s), which would land on whichever run came first.
        warm = tmp / "warm-data"
        generate(warm, 2, 300, p["seed"])
        for name, config in (("warm-seed", SEED_CONFIG), ("warm-sattag", None)):
            _one(warm, tmp / name, config)
        # Each run in a fresh process of its own, so that its peak is its own.
        seed, _, _ = measure(_one, data, tmp / "seed", SEED_CONFIG)
        ours, _, _ = measure(_one, data, tmp / "sattag", None)
    size = "full-size" if p["size"] is None else f"size {p['size']}"
    rows = []
    for tool, r in (("seed pipeline", seed), ("sattag defaults", ours)):
        scenes = sorted(r["predict_s"])
        per_scene = " / ".join(f"{r['predict_s'][s]:.1f}" for s in scenes)
        rows.append(row(BENCH, tool, r["seconds"], r["peak_mib"] / 1024,
                        metric=f"train {r['train_s']:.1f} s; predict {per_scene} s",
                        note=f"{p['n_scenes']} generated {size} scenes, both training, --workers 0"))
    ratio = max(ours["predict_s"][s] / seed["predict_s"][s] for s in ours["predict_s"])
    rows.append(row(BENCH, "sattag / seed", ours["seconds"] / seed["seconds"], float("nan"),
                    metric=f"predict {ratio:.2f}x the seed's (worst scene); train {ours['train_s']:.0f} s",
                    target=f"predict <= {PREDICT_RATIO:.0f}x; train < {TRAIN_LIMIT_S:.0f} s",
                    note=("met" if ratio <= PREDICT_RATIO and ours["train_s"] < TRAIN_LIMIT_S else "NOT met")
                    + f"; {gen_s:.0f} s to generate the data (not timed)"))
    return rows


if __name__ == "__main__":
    for r in run("--quick" in sys.argv):
        print(r)
