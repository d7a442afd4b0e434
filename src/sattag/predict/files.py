"""A scene's prediction in the run folder (writers and readers): ``probabilities/<scene>.parquet`` and
``probabilities/<scene>_rules.csv``; :func:`write_prediction` writes all of a scene's prediction files.

``probabilities/<scene>.parquet``: one row per cluster: ``cluster`` (int32, the id in the cluster-id
image), ``size`` (int64, pixels), ``p_<class id>`` (float32, the class's probability, one column per
class of the run's class table, in its order) and, when written with flags, ``flag_<class id>`` (bool,
the class is predicted for the cluster after thresholds and rules).

``probabilities/<scene>_rules.csv``: one row per rule of the configuration (columns
:data:`sattag.predict.rules.RULE_COLUMNS`): ``rule``, ``kind`` (``size`` | ``overlap``), ``target``,
``other`` (class names; ``other`` empty for a size rule), ``target_id``, ``other_id`` (nullable int:
their ids, empty for a skipped rule), ``scope``, ``min_px``, ``max_px`` (nullable int), ``reason``,
``skipped`` (text, empty unless skipped), ``clusters``, ``pixels`` (int: what the rule turned off).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sattag._files import atomic_path, read_csv
from sattag.classes import ClassTable
from sattag.errors import InputError
from sattag.predict.masks import PredictResult
from sattag.predict.rules import RULE_COLUMNS
from sattag.scene import Grid
from sattag.segment import ClusterTable

__all__ = ["RULE_KINDS", "probability_frame", "read_probabilities", "read_rules", "write_prediction",
           "write_probabilities", "write_rules"]

#: Kinds of the columns of ``_rules.csv`` (:func:`sattag._files.read_csv`), in ``RULE_COLUMNS`` order.
RULE_KINDS = dict(zip(RULE_COLUMNS, ["str", "str", "str", "str", "Int64", "Int64", "str", "Int64", "Int64",
                                     "str", "str", "int", "int"]))


def probability_frame(table: ClusterTable, probs: np.ndarray, classes: ClassTable,
                      flags: np.ndarray | None = None) -> pd.DataFrame:
    """One row per cluster: ``cluster``, ``size``, ``p_<class id>`` per class (and ``flag_<id>``)."""
    df = pd.DataFrame({"cluster": table.ids.astype(np.int32), "size": table.sizes.astype(np.int64)})
    for j, cid in enumerate(classes.ids):
        df[f"p_{cid}"] = probs[:, j].astype(np.float32)
    if flags is not None:
        for j, cid in enumerate(classes.ids):
            df[f"flag_{cid}"] = flags[:, j].astype(bool)
    return df


def write_probabilities(path: str | Path, table: ClusterTable, probs: np.ndarray, classes: ClassTable,
                        flags: np.ndarray | None = None) -> Path:
    """Write the per-cluster probability table (:func:`probability_frame`) atomically as parquet."""
    df = probability_frame(table, probs, classes, flags)
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)


def read_probabilities(path: str | Path, classes: ClassTable) -> pd.DataFrame:
    """Read a probability table written for ``classes``: ``cluster``, ``size``, ``p_<id>`` per class and
    the ``flag_<id>`` columns when there are any, with the module docstring's dtypes. Raises
    :class:`InputError` naming the file when it cannot be read or lacks a column."""
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises many types; the message says what
        raise InputError(f"cannot read probabilities ({e})", path) from e
    kinds = {"cluster": "int32", "size": "int64", **{f"p_{cid}": "float32" for cid in classes.ids}}
    if any(f"flag_{cid}" in df.columns for cid in classes.ids):
        kinds.update({f"flag_{cid}": "bool" for cid in classes.ids})
    missing = [c for c in kinds if c not in df.columns]
    if missing:
        raise InputError(f"no column {', '.join(map(repr, missing))} in the probabilities "
                         f"(columns: {list(df.columns)})", path)
    return df[list(kinds)].astype(kinds)


def write_rules(path: str | Path, record: pd.DataFrame) -> Path:
    """Write a rule record (``apply_rules``' second result) atomically as CSV; a rule's missing value
    (no other class, no bound) is an empty cell."""
    with atomic_path(path) as tmp:
        record[RULE_COLUMNS].to_csv(tmp, index=False)
    return Path(path)


def read_rules(path: str | Path) -> pd.DataFrame:
    """Read a rule record: :data:`RULE_KINDS` with their dtypes (empty text as ``""``, a missing whole
    number as ``<NA>``). Raises :class:`InputError` naming the file when it cannot be read or lacks a
    column."""
    return read_csv(path, RULE_KINDS)


def write_prediction(run, scene_id: str, result: PredictResult, grid: Grid, classes: ClassTable,
                     bands: tuple[str, ...] | None = None) -> dict[str, Path]:
    """Write a scene's prediction into a run folder (``sattag.runfolder.RunFolder``), each file by its
    owner: cluster ids and cluster table (``sattag.segment``), probabilities with flags and the rule
    record (here), class masks (``sattag.labels.write_masks``). Masks are written last, so their
    presence means the scene's prediction is complete."""
    from sattag.labels import write_masks
    from sattag.segment import write_cluster_ids, write_cluster_table

    out = {
        "clusters": write_cluster_ids(run.clusters(scene_id), result.cluster_ids, grid),
        "cluster_table": write_cluster_table(run.cluster_table(scene_id), result.cluster_table, bands),
        "probabilities": write_probabilities(run.probabilities(scene_id), result.cluster_table,
                                             result.probabilities, classes, result.flags),
        "rules": write_rules(run.rules_csv(scene_id), result.rule_counts),
    }
    out["masks"] = write_masks(run.masks(scene_id), result.masks, grid, classes)
    return out
