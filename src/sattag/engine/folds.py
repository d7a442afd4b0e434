"""K-fold cross-validation by scene (``sattag evaluate``): how well models tag scenes they never saw.

Every labelled scene is held out in exactly one fold; each fold trains on the other folds' scenes
and predicts and scores its own. The folds share the run's ingest and truth (one ``stacks/`` and
``truth_*`` in RUN), and write their models, predictions and scores under ``RUN/folds/fold_K/``.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from sattag.engine import run as stages
from sattag.engine.run import Session
from sattag.errors import SattagError
from sattag.learn.split import HELD_OUT, kfold_scenes
from sattag.runfolder import RunFolder
from sattag.scene import Scene


def cross_validate(session: Session, scenes: Sequence[Scene], folds: int):
    """Run ``folds``-fold cross-validation by scene; write ``cv_scores.csv`` and ``cv_summary.csv``.

    Returns the summary: per kind (polygon, pixel) and class, the held-out Jaccard's mean, standard
    deviation, min and max over the folds where the class has a score, and ``pooled`` (intersections
    and unions summed over all folds, then divided: the DSTL rule over all scenes at once).
    """
    import pandas as pd

    from sattag.evaluate import CV_SUMMARY_COLUMNS, score_table, write_cv_scores, write_cv_summary

    stages.ingest(session, scenes)
    explored = stages.explore(session, scenes)
    labelled = [s for s in explored.labelled if not session.failed(s)]
    if not labelled:
        raise SattagError("no labelled scene to cross-validate on", session.labels.path or session.data_dir)
    rows = []
    for k, split in enumerate(kfold_scenes(labelled, folds, seed=session.config.split.seed), start=1):
        fold = dataclasses.replace(
            session, run=RunFolder(session.run.root / "folds" / f"fold_{k}", shared=session.run.inputs),
            split=split, failures=[], timings=[], notes=[])
        fold.run.root.mkdir(parents=True, exist_ok=True)
        stages.train(fold, scenes, explored)
        predicted = stages.predict(fold, [s for s in scenes if s.id in split.held_out], figure_scenes=0)
        table = stages.score(fold, predicted)
        session.failures.extend(fold.failures)
        session.timings.extend(fold.timings)
        if table is not None:
            rows.append(table[table["split"] == HELD_OUT].assign(fold=k))
    session.write_records()
    if not rows:
        raise SattagError("no fold could be scored", session.run.root)
    per_fold = pd.concat(rows, ignore_index=True)
    write_cv_scores(session.run.cv_scores_csv, per_fold)
    summaries = []
    for kind, part in per_fold.groupby("kind", sort=False):
        classes_part = part[part["class_id"] != 0]
        pooled = score_table(session.classes,
                             *[classes_part.groupby("class_id")[c].sum().reindex(list(session.classes.ids)).fillna(0)
                               .to_numpy() for c in ("intersection", "union")])
        for cid, name in zip([*session.classes.ids, 0], [*session.classes.names, "mean"]):
            j = part.loc[part["class_id"] == cid, "jaccard"].dropna().to_numpy(dtype=float)
            summaries.append({
                "kind": kind, "class_id": cid, "class": name, "folds": int(j.size),
                "mean": float(j.mean()) if j.size else np.nan,
                "std": float(j.std(ddof=1)) if j.size > 1 else np.nan,
                "min": float(j.min()) if j.size else np.nan, "max": float(j.max()) if j.size else np.nan,
                "pooled": float(pooled.loc[pooled["class_id"] == cid, "jaccard"].iloc[0]),
            })
    summary = pd.DataFrame(summaries, columns=list(CV_SUMMARY_COLUMNS))
    write_cv_summary(session.run.cv_summary_csv, summary)
    return summary
