"""Which labelled scenes train and which are held out: a split by scene, and k folds by scene.

Quality a user can trust is measured on scenes the models never saw. Pixels of one scene are not
independent (neighbours share spectra, light and season), so a split of pixels says little about a
new scene; these splits are by whole scene. Both are deterministic for a seed and do not depend on
the order the scenes are given in. With a single training scene, thresholds can be tuned on strips
of it instead (:func:`scene_strips`): the nearest thing to an unseen scene that one scene holds.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from sattag.config import SplitConfig
from sattag.errors import ConfigError

#: Names of the two sides of a split, as written in ``scores.csv``, ``auc.csv`` and the report.
HELD_OUT = "held-out"
IN_SAMPLE = "in-sample"


@dataclass(frozen=True)
class SceneSplit:
    """Labelled scenes split into ``train`` (models learn from them) and ``held_out`` (scored only)."""

    train: tuple[str, ...]
    held_out: tuple[str, ...]

    def side(self, scene_id: str) -> str | None:
        """``"in-sample"`` for a training scene, ``"held-out"`` for a held-out one, else None."""
        if scene_id in self.held_out:
            return HELD_OUT
        if scene_id in self.train:
            return IN_SAMPLE
        return None

    def to_dict(self) -> dict:
        return {"train": list(self.train), "held_out": list(self.held_out)}

    @classmethod
    def from_dict(cls, d: dict) -> "SceneSplit":
        return cls(tuple(d.get("train", ())), tuple(d.get("held_out", ())))


def _order(scene_ids: Sequence[str], seed: int) -> list[str]:
    """The scenes in a pseudo-random order fixed by ``seed`` and each scene's id alone."""
    def key(s: str) -> bytes:
        return hashlib.blake2b(f"{seed}:{s}".encode(), digest_size=8).digest()
    return sorted(dict.fromkeys(scene_ids), key=key)


def holdout_count(n_labelled: int, fraction: float | None, min_scenes: int = SplitConfig.min_scenes,
                  default: float = SplitConfig.default_holdout) -> int:
    """How many of ``n_labelled`` scenes to hold out.

    ``fraction`` None is the default: ``default`` of them (at least one) when there are at least
    ``min_scenes`` labelled scenes, none otherwise (too few to spare one). 0 holds none out.
    """
    if fraction is None:
        return max(1, round(default * n_labelled)) if n_labelled >= min_scenes else 0
    if not 0 <= fraction < 1:
        raise ConfigError(f"--holdout must be in [0, 1), got {fraction}")
    return int(math.ceil(fraction * n_labelled - 1e-9)) if fraction > 0 else 0


def split_scenes(labelled: Sequence[str], fraction: float | None = None,
                 held_out: Sequence[str] | None = None, seed: int = 0,
                 min_scenes: int = SplitConfig.min_scenes, default: float = SplitConfig.default_holdout) -> SceneSplit:
    """Split the labelled scenes into training and held-out scenes.

    ``held_out`` names the held-out scenes (wins over ``fraction``); else :func:`holdout_count` of
    them are drawn with ``seed``. :func:`split_for` takes these from a :class:`SplitConfig`. Raises :class:`ConfigError` (naming the option) for a named scene
    that is not labelled, or a split that leaves no training scene.
    """
    labelled = sorted(dict.fromkeys(labelled))
    if held_out:
        unknown = [s for s in held_out if s not in labelled]
        if unknown:
            raise ConfigError(f"--holdout-scenes: {', '.join(unknown)} is not a labelled scene "
                              f"(labelled: {', '.join(labelled) or 'none'})")
        chosen = set(held_out)
    else:
        n = holdout_count(len(labelled), fraction, min_scenes, default)
        chosen = set(_order(labelled, seed)[:n])
    train = tuple(s for s in labelled if s not in chosen)
    if labelled and not train:
        raise ConfigError(f"the holdout leaves no training scene (all {len(labelled)} labelled scenes held out)")
    return SceneSplit(train, tuple(s for s in labelled if s in chosen))


def split_for(labelled: Sequence[str], config: SplitConfig) -> SceneSplit:
    """:func:`split_scenes` with the settings of ``config`` (``[split]`` of a run's configuration)."""
    return split_scenes(labelled, config.holdout, config.holdout_scenes, config.seed, config.min_scenes,
                        config.default_holdout)


def validation_scenes(train: Sequence[str], fraction: float, seed: int = 0) -> SceneSplit:
    """Training scenes split again: ``held_out`` = validation scenes (e.g. to tune thresholds on scenes a
    first model did not see), ``train`` = the rest. ``fraction`` of them (at least one) when there are
    two or more training scenes; none with a single one."""
    train = sorted(dict.fromkeys(train))
    if len(train) < 2 or fraction <= 0:
        return SceneSplit(tuple(train), ())
    n = min(len(train) - 1, max(1, round(fraction * len(train))))
    chosen = set(_order(train, seed + 7919)[:n])
    return SceneSplit(tuple(s for s in train if s not in chosen), tuple(s for s in train if s in chosen))


def tuning_folds(train: Sequence[str], folds: int, fraction: float, seed: int = 0) -> list[SceneSplit]:
    """The folds thresholds are tuned on (``[split] tuning_folds``): ``folds`` >= 2 splits the
    training scenes ``train`` by scene (:func:`kfold_scenes`, at most one fold per scene), each
    fold's ``held_out`` scenes validating models trained on its ``train``; ``folds`` = 1 is one split
    leaving out ``fraction`` of them (:func:`validation_scenes`). None with fewer than two scenes."""
    train = sorted(dict.fromkeys(train))
    if len(train) < 2:
        return []
    if folds >= 2:
        return kfold_scenes(train, min(int(folds), len(train)), seed + 7919)
    one = validation_scenes(train, fraction, seed)
    return [one] if one.held_out else []


def scene_strips(centres: np.ndarray, k: int) -> np.ndarray:
    """Split one scene's clusters into ``k`` strips to validate on (``[split] tune_on_strips``).

    ``centres``: float (K, 2), each cluster's centre (row, col) in px. The cuts run across the
    longer side of the clusters' extent, at quantiles of the centres, so the strips hold about as
    many clusters each and each is one connected part of the scene (neighbouring pixels leak less
    across a few straight cuts than across a checkerboard). Returns int (K,): each cluster's strip,
    0 (top or left) to ``k - 1``.
    """
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    if not len(centres):
        return np.zeros(0, dtype=np.int64)
    extent = centres.max(axis=0) - centres.min(axis=0)
    along = centres[:, int(np.argmax(extent))]
    cuts = np.quantile(along, np.arange(1, k) / k)
    return np.searchsorted(cuts, along, side="right").astype(np.int64)


def kfold_scenes(labelled: Sequence[str], k: int, seed: int = 0) -> list[SceneSplit]:
    """``k`` splits by scene: every labelled scene is held out in exactly one fold.

    Scenes are dealt round-robin in a seeded order, so fold sizes differ by at most one. Raises
    :class:`ConfigError` when ``k`` is under 2 or above the number of labelled scenes.
    """
    labelled = sorted(dict.fromkeys(labelled))
    if k < 2:
        raise ConfigError(f"--folds must be at least 2, got {k}")
    if k > len(labelled):
        raise ConfigError(f"--folds {k} is more than the {len(labelled)} labelled scene(s)")
    order = _order(labelled, seed)
    folds = [set(order[i::k]) for i in range(k)]
    return [SceneSplit(tuple(s for s in labelled if s not in f), tuple(s for s in labelled if s in f))
            for f in folds]
