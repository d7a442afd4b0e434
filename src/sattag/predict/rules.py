"""Thresholds and the declarative rules that decide which classes a cluster gets.

The rules live in ``PredictConfig`` (``sattag.config``), not in code, and name classes by name:

* ``threshold`` / ``thresholds``: a class is *predicted* for a cluster when its probability is at
  least the class's threshold (default 0.5); ``thresholds`` is keyed by class name or class id.
* ``size_rules`` (:class:`~sattag.config.SizeRule`): the target class is dropped from clusters with
  fewer than ``min_px`` or more than ``max_px`` pixels. With ``scope="group"`` (the default) the size
  is that of the connected group of adjacent clusters that all have the target class: at a 3 %
  tolerance a crop field is dozens of clusters of a few hundred pixels each (on a generated full-size
  scene 27 % of the crop pixels lie in clusters under 2000 px), so the cluster alone says little.
* ``overlap_rules`` (:class:`~sattag.config.OverlapRule`): with ``scope="cluster"``, when ``target`` and
  ``other`` are both predicted for a cluster, ``target`` is dropped; with ``scope="neighbours"``,
  ``target`` is dropped from a cluster when ``other`` is predicted for any adjacent cluster.

* pairwise models (``[model] pairs``, :class:`~sattag.config.ClassPair`, trained with the models):
  where both classes of a pair are predicted for a cluster, their pairwise model keeps the one it
  finds more probable and drops the other.

Order: thresholds, then the pairwise models, then the size rules, then the overlap rules, each in table order; every rule sees
the flags the rules before it left (so a size rule that already dropped a class keeps an overlap rule
about that class from firing; put a rule earlier in the table to let it act first). A neighbours rule reads the neighbours'
flags as they were before that rule, so its result does not depend on the order of clusters.

Names are resolved against the class table by :func:`sattag.config.rules_for`: DSTL's default rules
apply only to a class table with the DSTL classes they name (otherwise they are recorded with
``skipped=True``); a configured rule naming a class the table lacks is a ``ConfigError``.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from sattag.classes import ClassTable
from sattag.config import BoundRule, PredictConfig, SizeRule, rules_for, thresholds_for
from sattag.segment.cluster import ClusterTable

#: Columns of the rule record (``probabilities/<scene>_rules.csv``): ``target`` / ``other`` are class
#: names, ``target_id`` / ``other_id`` their ids in the class table (empty for a skipped rule).
RULE_COLUMNS = ["rule", "kind", "target", "other", "target_id", "other_id", "scope", "min_px", "max_px",
                "reason", "skipped", "clusters", "pixels"]


def with_tuned_thresholds(config: PredictConfig, tuned: Mapping[int, float], classes: ClassTable) -> PredictConfig:
    """``config`` with the models' tuned thresholds (class id -> threshold) for every class whose
    threshold the configuration does not fix itself (by name or by id): what the user wrote wins."""
    fixed = {c.id for c in classes if c.name in config.thresholds or c.id in config.thresholds}
    extra = {classes.by_id(cid).name: float(t) for cid, t in tuned.items() if cid in classes.ids and cid not in fixed}
    if not extra:
        return config
    return dataclasses.replace(config, thresholds={**config.thresholds, **extra})


#: ``decide_pair(first id, second id, clusters int (n,)) -> float (n,)``: the probability of ``first``
#: against ``second`` for those clusters, from their pairwise model.
PairDecider = Callable[[int, int, np.ndarray], np.ndarray]


def threshold_flags(probs: np.ndarray, config: PredictConfig, classes: ClassTable) -> np.ndarray:
    """bool (K, C): probability >= the class's threshold (:func:`sattag.config.thresholds_for`)."""
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] != len(classes):
        raise ValueError(f"threshold_flags needs probabilities of shape (K, {len(classes)}) for "
                         f"{len(classes)} classes, got {probs.shape}")
    return probs >= thresholds_for(config, classes)[None, :]


def neighbour_any(flag: np.ndarray, table: ClusterTable) -> np.ndarray:
    """bool (K,): some adjacent cluster has ``flag`` set."""
    ptr, ids = table.neighbour_ptr, table.neighbour_ids
    if ids.size == 0:
        return np.zeros(len(table), bool)
    hits = flag[ids].astype(np.int64)
    # per-row sums over CSR: cumulative sum read at the row bounds
    csum = np.concatenate([[0], np.cumsum(hits)])
    return (csum[ptr[1:]] - csum[ptr[:-1]]) > 0


def group_sizes(flag: np.ndarray, table: ClusterTable) -> np.ndarray:
    """int64 (K,): for clusters with ``flag``, the pixels of the connected group of adjacent flagged
    clusters they belong to; 0 for clusters without ``flag``."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    k = len(table)
    if k == 0:
        return np.zeros(0, np.int64)
    ptr, ids = table.neighbour_ptr, table.neighbour_ids
    rows = np.repeat(np.arange(k, dtype=np.int64), np.diff(ptr))
    keep = flag[rows] & flag[ids]
    graph = csr_matrix((np.ones(int(keep.sum()), np.int8), (rows[keep], ids[keep])), shape=(k, k))
    _, comp = connected_components(graph, directed=False)
    totals = np.bincount(comp, weights=np.where(flag, table.sizes, 0), minlength=comp.max() + 1)
    return np.where(flag, totals[comp], 0).astype(np.int64)


def _describe(rule) -> str:
    """The rule in words, for the record: ``drop Trees where Road is predicted in the same cluster``."""
    if isinstance(rule, SizeRule):
        parts = []
        if rule.min_px is not None:
            parts.append(f"< {rule.min_px} px")
        if rule.max_px is not None:
            parts.append(f"> {rule.max_px} px")
        what = "clusters" if rule.scope == "cluster" else "groups of adjacent clusters"
        return f"drop {rule.target} from {what} {' or '.join(parts)}"
    where = "in the same cluster" if rule.scope == "cluster" else "in a neighbouring cluster"
    return f"drop {rule.target} where {rule.other} is predicted {where}"


def apply_rules(probs: np.ndarray, table: ClusterTable, config: PredictConfig, classes: ClassTable,
                pairs: Sequence[tuple[int, int]] = (), decide_pair: PairDecider | None = None,
                ) -> tuple[np.ndarray, pd.DataFrame]:
    """Decide the classes of every cluster: thresholds, pairwise models, size rules, overlap rules.

    Parameters
    ----------
    probs:
        float32 (K, C) per-cluster probabilities, columns in ``classes`` order.
    table:
        the clusters (sizes and adjacency are read).
    config:
        thresholds and rule tables.
    classes:
        the class table (maps the class names of the rules to columns).
    pairs, decide_pair:
        ``(first id, second id)`` of each pairwise model and the function that applies them
        (:data:`PairDecider`); called only for the clusters where both classes are predicted.

    Returns
    -------
    flags:
        bool (K, C), class ``classes[j]`` is predicted for cluster ``k``.
    record:
        one row per rule (columns ``RULE_COLUMNS``): what it is and how many clusters / pixels it
        changed (a flag turned off).

    Raises
    ------
    ConfigError
        when a configured rule or threshold names a class that is not in ``classes``.
    ValueError
        when ``probs`` does not have one row per cluster and one column per class.
    """
    flags = threshold_flags(probs, config, classes)
    if flags.shape[0] != len(table):
        raise ValueError(f"apply_rules needs one probability row per cluster: got {flags.shape[0]} rows "
                         f"for {len(table)} clusters")
    bound = rules_for(config, classes)
    sizes = table.sizes
    col = {cid: i for i, cid in enumerate(classes.ids)}
    if pairs and decide_pair is None:
        raise ValueError("apply_rules: pairs given without decide_pair")
    rows = [_apply_pair(pair, flags, sizes, col, classes, decide_pair) for pair in pairs]
    rows += [_apply(b, flags, table, sizes, col) for b in bound]
    record = pd.DataFrame(rows, columns=RULE_COLUMNS)
    # whole numbers stay whole where some rows have none (a size rule has no other class, ...)
    return flags, record.astype({c: "Int64" for c in ("target_id", "other_id", "min_px", "max_px")})


def _apply(b: BoundRule, flags: np.ndarray, table: ClusterTable, sizes: np.ndarray, col: dict[int, int]) -> dict:
    """Apply one bound rule to ``flags`` in place; its record row."""
    rule = b.rule
    is_size = isinstance(rule, SizeRule)
    rec = {"rule": _describe(rule), "kind": "size" if is_size else "overlap",
           "target": rule.target, "other": None if is_size else rule.other,
           "target_id": b.target_id, "other_id": b.other_id, "scope": rule.scope,
           "min_px": getattr(rule, "min_px", None), "max_px": getattr(rule, "max_px", None),
           "reason": rule.reason, "skipped": b.skipped, "clusters": 0, "pixels": 0}
    if b.skipped:
        return rec
    t = col[b.target_id]
    if is_size:
        size = sizes if rule.scope == "cluster" else group_sizes(flags[:, t], table)
        hit = np.zeros(len(table), bool)
        if rule.min_px is not None:
            hit |= size < rule.min_px
        if rule.max_px is not None:
            hit |= size > rule.max_px
    elif rule.scope == "cluster":
        hit = flags[:, col[b.other_id]].copy()
    else:
        hit = neighbour_any(flags[:, col[b.other_id]], table)
    changed = flags[:, t] & hit
    flags[changed, t] = False
    rec["clusters"] = int(changed.sum())
    rec["pixels"] = int(sizes[changed].sum())
    return rec


def _apply_pair(pair: tuple[int, int], flags: np.ndarray, sizes: np.ndarray, col: dict[int, int],
                classes: ClassTable, decide_pair: PairDecider) -> dict:
    """Let the pairwise model of ``pair`` choose between its classes where both are flagged (in place);
    its record row (``clusters`` / ``pixels``: where it chose)."""
    first, second = pair
    a, b = col[first], col[second]
    names = classes.by_id(first).name, classes.by_id(second).name
    both = np.flatnonzero(flags[:, a] & flags[:, b])
    if both.size:
        p_first = np.asarray(decide_pair(first, second, both), np.float64)
        if p_first.shape != both.shape:
            raise ValueError(f"decide_pair gave {p_first.shape} probabilities for {both.size} clusters")
        keep_first = p_first >= 0.5
        flags[both[keep_first], b] = False
        flags[both[~keep_first], a] = False
    return {"rule": f"decide {names[0]} vs {names[1]} by their pairwise model where both are predicted",
            "kind": "pair", "target": names[0], "other": names[1], "target_id": first, "other_id": second,
            "scope": "cluster", "min_px": None, "max_px": None, "reason": "the pairwise model tells them apart",
            "skipped": False, "clusters": int(both.size), "pixels": int(sizes[both].sum())}
