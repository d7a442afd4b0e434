"""Make the example figures of the README: a generated DSTL-format dataset, explored.

    .venv/bin/python docs/figures/make_figures.py [--size 1600] [--scenes 6]

Writes thumbnails.png, bands.png, masks.png, overlay.png and histograms.png beside this file.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from sattag.classes import DSTL_CLASSES
from sattag.config import IngestConfig
from sattag.errors import AlignmentError
from sattag.ingest.discover import discover_scenes
from sattag.synth import generate_dataset
from sattag.ingest import build_stack, scene_thumbnail
from sattag.labels import band_histograms, rasterize_classes, scene_histograms, scene_labels
from sattag.viz import bands_figure, histogram_figure, masks_figure, overlay_figure, save_figure, thumbnails_figure

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1600)
    ap.add_argument("--scenes", type=int, default=6)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data = generate_dataset(Path(tmp) / "data", n_scenes=args.scenes, n_train=args.scenes,
                                size=args.size, seed=args.seed)
        thumbs, hist, bg, best = {}, 0, 0, None
        for scene in discover_scenes(data):
            try:
                stack = build_stack(scene)
            except AlignmentError as e:  # a figure can live with an unaligned band group
                print(f"{e}; stacking without alignment", file=sys.stderr)
                stack = build_stack(scene, IngestConfig(align=False))
            polys = scene_labels(data, scene.id)
            masks = rasterize_classes(polys, stack.grid)
            thumbs[scene.id] = scene_thumbnail(stack.data, stack.bands, size=300)
            hist = hist + scene_histograms(stack.data, masks)
            bg = bg + band_histograms(stack.data)
            n_cls = int((masks.reshape(len(masks), -1).max(axis=1) > 0).sum())
            if best is None or n_cls > best[0]:
                best = (n_cls, stack, polys, masks)
        _, stack, polys, masks = best
        out = args.out
        save_figure(thumbnails_figure(thumbs, ncols=3), out / "thumbnails.png", dpi=80)
        save_figure(bands_figure(stack.data, stack.bands, stack.scene_id, max_px=180), out / "bands.png",
                    dpi=75, palette=48)
        save_figure(masks_figure(masks, DSTL_CLASSES, stack.scene_id), out / "masks.png", dpi=80)
        save_figure(overlay_figure(stack.data, stack.bands, polys, stack.grid, DSTL_CLASSES, masks=masks,
                                   scene_id=stack.scene_id, crop_px=400), out / "overlay.png", dpi=80)
        save_figure(histogram_figure(hist, stack.bands, DSTL_CLASSES, background=bg), out / "histograms.png",
                    dpi=80)
    for p in sorted(out.glob("*.png")):
        print(f"{p.name}: {p.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
