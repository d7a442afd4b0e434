"""A set of one-vs-all models, their model card, and their files on disk.

On disk (``RUN/models/``): one XGBoost model per class in XGBoost's own UBJSON format
(``class_05.ubj``; never pickle, so a model file can't run code when loaded), one per pair of
classes with a pairwise model (``pair_03_04.ubj``) and ``card.json``:
band order, class table, configuration, sample counts, validation AUC, feature importances (gain by
band name), versions and each model file's SHA-256. :func:`load_models` refuses models whose bands
or class table differ from the data they are applied to.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sattag._files import atomic_path
from sattag.classes import ClassTable
from sattag.config import Config, config_from_dict
from sattag.errors import ConfigError, ModelError
from sattag.features import FeatureSet, feature_names
from sattag.features.objects import object_feature_names
from sattag.learn.split import SceneSplit

CARD_NAME = "card.json"
CARD_FORMAT = 1


@dataclass
class ClassResult:
    """What training one class's model gave: sample counts, validation AUC, seconds, importances.

    ``skipped`` holds the reason when no model was trained (its predictions are then 0).
    """

    class_id: int
    name: str
    n_in: int = 0
    n_out: int = 0
    n_train: int = 0
    n_valid: int = 0
    auc: float = float("nan")
    seconds: float = 0.0
    pos_weight: float = 1.0  # weight of in-class pixels in training: n_out / n_in of the training rows
    importance: dict[str, float] = field(default_factory=dict)  # band name -> total gain of its splits (XGBoost "total_gain")
    skipped: str | None = None

    @property
    def key(self):
        """What the booster is filed under in a :class:`ModelSet`: the class id."""
        return self.class_id


@dataclass
class PairResult(ClassResult):
    """What training one pairwise model gave: ``class_id`` is the pair's first class (label 1, its
    pixels counted in ``n_in``), ``other_id`` the second (label 0, ``n_out``); ``name`` "first / second"."""

    other_id: int = -1

    @property
    def key(self) -> tuple[int, int]:
        """``(first id, second id)``."""
        return (self.class_id, self.other_id)


@dataclass
class ModelSet:
    """One binary XGBoost booster per class id, with the bands, features and class table they were made for.

    ``bands``: the stack's band names; ``feature_set``: what the models see of a pixel, computed from
    those bands (:mod:`sattag.features`); ``columns``: the feature names, the models' input columns.
    """

    boosters: dict[int, Any]  # class id -> xgboost.Booster
    bands: tuple[str, ...]
    classes: ClassTable
    config: Config
    results: dict[int, ClassResult]
    # The scenes the models learned from and those held out (a SceneSplit); None when unknown.
    split: SceneSplit | None = None
    feature_set: FeatureSet = field(default_factory=lambda: FeatureSet("spectra"))
    # Tuned decision thresholds (``sattag.learn.thresholds``): a table with class_id, class,
    # threshold, jaccard, jaccard_at_0.5; None when not tuned.
    thresholds: Any = None
    # Pairwise models (``sattag.learn.train.train_pairs``): (first id, second id) -> booster giving the
    # probability of ``first`` against ``second``, and what training each gave.
    pairs: dict[tuple[int, int], Any] = field(default_factory=dict)
    pair_results: dict[tuple[int, int], PairResult] = field(default_factory=dict)
    # "pixel": rows are pixels (``columns`` the feature names); "cluster": rows are clusters
    # (``columns`` their object features, ``sattag.features.objects``).
    level: str = "pixel"

    def predict_pair(self, first: int, second: int, X: np.ndarray) -> np.ndarray:
        """float32 (N,): the probability of class ``first`` against class ``second`` for each row of
        ``X`` (float32 (N, F), columns ``self.columns``), from their pairwise model.

        Raises ``KeyError`` when there is no pairwise model for ``(first, second)``.
        """
        booster = self.pairs[(first, second)]
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != len(self.columns):
            raise ValueError(f"expected (N, {len(self.columns)}) features, got shape {X.shape}")
        if X.shape[0] == 0:
            return np.zeros(0, np.float32)
        return np.asarray(booster.inplace_predict(X, validate_features=False), np.float32)

    def tuned_thresholds(self) -> dict[int, float]:
        """class id -> tuned threshold (empty when the thresholds were not tuned)."""
        if self.thresholds is None:
            return {}
        return {int(r.class_id): float(r.threshold) for r in self.thresholds.itertuples()}

    @property
    def columns(self) -> tuple[str, ...]:
        """The models' input columns: the feature names of ``feature_set`` on ``bands`` (per pixel),
        or the object features built on them (per cluster)."""
        return model_columns(self.bands, self.feature_set, self.level)

    # -- use -------------------------------------------------------------------------------------
    def predict_proba(self, X: np.ndarray, n_threads: int | None = None) -> np.ndarray:
        """Probability of each class for each row.

        Parameters
        ----------
        X:
            float32 (N, F) pixel (or cluster mean) features, columns in ``self.columns`` order.
        n_threads:
            Threads XGBoost uses (None: as the boosters are set, all cores of this process); set 1 when
            several worker processes predict at once on one machine.

        Returns
        -------
        float32 (N, C), columns in ``self.classes`` order; 0 for classes without a model.
        """
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != len(self.columns):
            raise ValueError(f"expected (N, {len(self.columns)}) features {list(self.columns)}, "
                             f"got shape {X.shape}")
        X = np.ascontiguousarray(X, dtype=np.float32)
        out = np.zeros((X.shape[0], len(self.classes)), dtype=np.float32)
        if X.shape[0] == 0:
            return out
        for i, cid in enumerate(self.classes.ids):
            booster = self.boosters.get(cid)
            if booster is not None:
                if n_threads is not None:
                    booster.set_param({"nthread": int(n_threads)})
                # inplace_predict skips building a DMatrix; binary:logistic gives probabilities.
                out[:, i] = booster.inplace_predict(X, validate_features=False)
        return out

    @property
    def auc(self) -> dict[int, float]:
        return {cid: r.auc for cid, r in self.results.items()}

    @property
    def seconds(self) -> dict[int, float]:
        return {cid: r.seconds for cid, r in self.results.items()}

    @property
    def importances(self) -> dict[int, dict[str, float]]:
        return {cid: r.importance for cid, r in self.results.items()}

    # -- files -----------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``class_XX.ubj`` per trained class and ``card.json`` into ``directory``; returns the card path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        files: dict[int, dict[str, str]] = {}
        for cid, booster in sorted(self.boosters.items()):
            name = model_file_name(cid)
            with atomic_path(directory / name) as tmp:
                booster.save_model(str(tmp))  # format follows the .ubj suffix
                digest = _sha256(tmp)
            files[cid] = {"file": name, "sha256": digest}
        for key, booster in sorted(self.pairs.items()):
            name = pair_file_name(*key)
            with atomic_path(directory / name) as tmp:
                booster.save_model(str(tmp))
                digest = _sha256(tmp)
            files[key] = {"file": name, "sha256": digest}
        card = {
            "format": CARD_FORMAT,
            "kind": "sattag one-vs-all XGBoost models",
            "bands": list(self.bands),
            "level": self.level,
            "max_bin": self.config.model.bins(self.level),
            "features": {**self.feature_set.to_dict(), "columns": list(self.columns)},
            "classes": self.classes.to_records(),
            "config": self.config.to_dict(),
            "split": self.split.to_dict() if self.split is not None else None,
            "thresholds": (None if self.thresholds is None else
                           json.loads(self.thresholds.to_json(orient="records"))),
            "models": [{"class_id": cid, "class": r.name, "n_in": r.n_in, "n_out": r.n_out,
                        "pos_weight": r.pos_weight, **_card_entry(r, files.get(cid, {}))}
                       for cid, r in sorted(self.results.items())],
            "pairs": [{"first_id": r.class_id, "second_id": r.other_id, "pair": r.name, "n_first": r.n_in,
                       "n_second": r.n_out, **_card_entry(r, files.get(key, {}))}
                      for key, r in sorted(self.pair_results.items())],
            "versions": card_versions(),
        }
        path = directory / CARD_NAME
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(card, indent=2))
        return path


def _card_entry(r: ClassResult, file: dict) -> dict:
    """What the card says of every model, one-vs-all or pairwise: its file and how training went."""
    return {"file": file.get("file"), "sha256": file.get("sha256"), "n_train": r.n_train, "n_valid": r.n_valid,
            "auc": None if r.auc is None or math.isnan(r.auc) else r.auc, "seconds": r.seconds,
            "importance_gain": r.importance, "skipped": r.skipped}


def model_columns(bands: Sequence[str], feature_set: FeatureSet, level: str) -> tuple[str, ...]:
    """The input columns of models of ``level`` ("pixel" | "cluster") on ``bands`` and ``feature_set``."""
    pixel = feature_names(bands, feature_set)
    if level == "pixel":
        return pixel
    if level == "cluster":
        return object_feature_names(pixel)
    raise ValueError(f"model level must be 'pixel' or 'cluster', got {level!r}")


def model_file_name(class_id: int) -> str:
    return f"class_{class_id:02d}.ubj"


def pair_file_name(first: int, second: int) -> str:
    return f"pair_{first:02d}_{second:02d}.ubj"


def card_versions() -> dict[str, str]:
    """Versions of what a model file depends on (sattag, xgboost, numpy), recorded in ``card.json``.

    (A run's ``run.json`` records more: ``sattag.engine.run.library_versions``.)
    """
    import xgboost

    import sattag

    return {"sattag": sattag.__version__, "xgboost": xgboost.__version__, "numpy": np.__version__}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _class_key(classes: ClassTable | Sequence[dict]) -> list[tuple[int, str]]:
    records = classes.to_records() if isinstance(classes, ClassTable) else list(classes)
    # Colours are only for pictures; ids, names and order decide what a model means.
    return [(int(r["id"]), str(r["name"])) for r in records]


def load_models(directory: str | Path, bands: Sequence[str], classes: ClassTable,
                feature_set: FeatureSet | None = None) -> ModelSet:
    """Load the models in ``directory`` for data with these ``bands`` (stack order) and ``classes``.

    The models' feature set comes from their card (prediction computes the same features);
    ``feature_set``, when given, is the one the caller asked for and must be the card's.

    Raises
    ------
    ModelError
        naming the file and the fault when the card or a model file is missing, unreadable or corrupt,
        or when the band order, feature set or class table the models were trained on differs from
        the data's (naming both).
    """
    import xgboost as xgb

    directory = Path(directory)
    card_path = directory / CARD_NAME
    try:
        card = json.loads(card_path.read_text())
    except FileNotFoundError as e:
        raise ModelError("no model card here: not a sattag models folder (train first)", card_path) from e
    except OSError as e:
        raise ModelError(f"cannot read model card: {e.strerror}", card_path) from e
    except json.JSONDecodeError as e:
        raise ModelError(f"model card is not valid JSON: {e}", card_path) from e
    if not isinstance(card, dict) or not {"bands", "classes", "models"} <= set(card):
        raise ModelError("model card lacks bands/classes/models", card_path)

    bands = tuple(bands)
    card_features = FeatureSet.from_dict(card.get("features") or {"name": "spectra"})
    if feature_set is not None and feature_set != card_features:
        raise ModelError(f"feature set mismatch: models were trained on {card_features.describe()}, "
                         f"asked for {feature_set.describe()}", card_path)
    card_bands = tuple(card["bands"])
    if card_bands != bands:
        raise ModelError(
            f"band order mismatch: models were trained on bands {list(card_bands)}, "
            f"the data has {list(bands)}", card_path)
    try:
        card_classes = ClassTable.from_records(card["classes"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"model card has a bad class table: {e}", card_path) from e
    if _class_key(card_classes) != _class_key(classes):
        raise ModelError(
            f"class table mismatch: models were trained for classes {_class_key(card_classes)}, "
            f"the data uses {_class_key(classes)}", card_path)
    try:
        config = config_from_dict(card.get("config", {}), card_path)
    except ConfigError as e:
        raise ModelError(f"model card has a bad config: {e.fault}", card_path) from e

    level = card.get("level", "pixel")
    if level not in ("pixel", "cluster"):
        raise ModelError(f"model card has an unknown level {level!r} (pixel or cluster)", card_path)
    columns = model_columns(bands, card_features, level)
    boosters: dict[int, Any] = {}
    results: dict[int, ClassResult] = {}
    for m in card["models"]:
        cid = int(m["class_id"])
        auc = m.get("auc")
        results[cid] = ClassResult(
            class_id=cid, name=str(m.get("class", "")), n_in=int(m.get("n_in", 0)), n_out=int(m.get("n_out", 0)),
            n_train=int(m.get("n_train", 0)), n_valid=int(m.get("n_valid", 0)),
            auc=float("nan") if auc is None else float(auc), seconds=float(m.get("seconds", 0.0)),
            pos_weight=float(m.get("pos_weight", 1.0)),
            importance=dict(m.get("importance_gain") or {}), skipped=m.get("skipped"))
        if m.get("file"):
            boosters[cid] = _load_booster(directory, m, f"class {cid}", columns, card_features)
    pairs: dict[tuple[int, int], Any] = {}
    pair_results: dict[tuple[int, int], PairResult] = {}
    known = set(classes.ids)
    for m in card.get("pairs") or []:
        key = (int(m["first_id"]), int(m["second_id"]))
        if not set(key) <= known:
            raise ModelError(f"pairwise model {key} names a class that is not in the class table", card_path)
        auc = m.get("auc")
        pair_results[key] = PairResult(
            class_id=key[0], other_id=key[1], name=str(m.get("pair", "")), n_in=int(m.get("n_first", 0)),
            n_out=int(m.get("n_second", 0)), n_train=int(m.get("n_train", 0)), n_valid=int(m.get("n_valid", 0)),
            auc=float("nan") if auc is None else float(auc), seconds=float(m.get("seconds", 0.0)),
            importance=dict(m.get("importance_gain") or {}), skipped=m.get("skipped"))
        if m.get("file"):
            pairs[key] = _load_booster(directory, m, f"pair {m.get('pair', key)}", columns, card_features)
    split = SceneSplit.from_dict(card["split"]) if card.get("split") else None
    thresholds = None
    if card.get("thresholds"):
        import pandas as pd

        thresholds = pd.DataFrame(card["thresholds"])
    return ModelSet(boosters=boosters, bands=bands, classes=classes, config=config, results=results,
                    split=split, feature_set=card_features, thresholds=thresholds, pairs=pairs,
                    pair_results=pair_results, level=level)


def _load_booster(directory: Path, entry: dict, what: str, columns: tuple[str, ...], card_features: FeatureSet):
    """The booster of one card entry (``file``, ``sha256``), checked against the card and the columns."""
    import xgboost as xgb

    path = directory / entry["file"]
    if not path.is_file():
        raise ModelError(f"model file of {what} is missing", path)
    if entry.get("sha256") and _sha256(path) != entry["sha256"]:
        raise ModelError(f"model file of {what} is corrupt or changed (checksum differs from the card)", path)
    try:
        booster = xgb.Booster(model_file=str(path))
    except xgb.core.XGBoostError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unknown error"
        raise ModelError(f"not a readable XGBoost model: {first}", path) from e
    if booster.num_features() != len(columns):
        raise ModelError(f"model expects {booster.num_features()} features, {card_features.describe()} "
                         f"on the data's bands gives {len(columns)} columns", path)
    if booster.feature_names is not None and tuple(booster.feature_names) != columns:
        raise ModelError(f"feature mismatch: model was trained on {booster.feature_names}, "
                         f"{card_features.describe()} on the data's bands gives {list(columns)}", path)
    booster.set_param({"device": "cpu"})
    return booster


def read_card(directory: str | Path) -> dict:
    """The model card (``card.json``) of a models folder as a dict, without loading the models.

    Raises :class:`ModelError` naming the card when it is missing or not valid JSON.
    """
    path = Path(directory) / CARD_NAME
    try:
        card = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"cannot read model card ({e})", path) from e
    if not isinstance(card, dict):
        raise ModelError("model card is not a JSON object", path)
    return card


def read_card_split(directory: str | Path, labelled: Sequence[str] | None = None) -> SceneSplit:
    """The training / held-out scenes recorded in a models folder's card.

    ``labelled``: the labelled scenes of the data at hand; those the card does not list as training
    scenes are held out (models made elsewhere never saw them). Without ``labelled``, the card's own
    held-out list. Raises :class:`ModelError` naming the card when it cannot be read.
    """
    recorded = SceneSplit.from_dict(read_card(directory).get("split") or {})
    if labelled is None:
        return recorded
    train = tuple(s for s in labelled if s in recorded.train)
    return SceneSplit(train, tuple(s for s in labelled if s not in recorded.train))
