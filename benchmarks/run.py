"""`make bench`: run every benchmark (or some) and print one table with sattag and its peers.

    python benchmarks/run.py                 # all, full size
    python benchmarks/run.py --quick         # small sizes: a smoke test of the benchmarks themselves
    python benchmarks/run.py --only ingest,segment

Each benchmark module ``bench_<name>.py`` exposes ``run(quick) -> list[dict]``; every figure is
measured in this run, peers beside sattag, on this machine. Results also go to bench-out/results.csv.
"""
from __future__ import annotations

import argparse
import csv
import importlib
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["ingest", "labels", "learn", "segment", "vectorize", "engine", "quality", "cost", "scale"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--only", default="", help="comma-separated benchmark names: " + ",".join(ORDER))
    ap.add_argument("--out", default="bench-out/results.csv")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    names = [n for n in (args.only.split(",") if args.only else ORDER) if n]
    rows, failed = [], []
    for name in names:
        if not (HERE / f"bench_{name}.py").exists():
            print(f"[skip] benchmarks/bench_{name}.py not found", file=sys.stderr)
            continue
        t0 = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            mod = importlib.import_module(f"bench_{name}")
            rows.extend(mod.run(quick=args.quick))
        except Exception as e:  # one broken benchmark must not hide the others' figures
            failed.append(name)
            print(f"[bench] {name} FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        print(f"[bench] {name} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    _print(rows, args.quick)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cols = ["benchmark", "tool", "seconds", "peak_gib", "metric", "target", "note"]
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    print(f"\n{len(rows)} rows -> {out}; machine: {platform.machine()}, "
          f"{__import__('os').cpu_count()} cores, python {platform.python_version()}"
          + (" (QUICK: small sizes, not the targets' conditions)" if args.quick else ""))
    return 1 if failed else 0


def _print(rows: list[dict], quick: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="sattag benchmarks" + (" (quick)" if quick else ""), show_lines=False)
    for c, j in [("benchmark", "left"), ("tool", "left"), ("seconds", "right"), ("peak_gib", "right"),
                 ("metric", "left"), ("target", "left"), ("note", "left")]:
        t.add_column(c, justify=j, overflow="fold")
    for r in rows:
        t.add_row(*[str(r.get(c, "")) for c in ("benchmark", "tool", "seconds", "peak_gib", "metric", "target", "note")])
    Console(width=200).print(t)


if __name__ == "__main__":
    sys.exit(main())
