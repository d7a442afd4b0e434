"""One-vs-all XGBoost training, validation AUC, and the AUC table.

Each class gets a binary model (``binary:logistic``, ``hist`` trees) trained on its balanced sample
(see :mod:`sattag.learn.sample`), with ``SampleConfig.validation_fraction`` of the rows held out,
stratified by label, to measure AUC. Locally XGBoost uses every core of the process; given a
``dask.distributed.Client`` the same training runs through ``xgboost.dask`` across the workers.
"""
from __future__ import annotations

import concurrent.futures
import functools
import os
import shutil
import subprocess
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from sattag._futures import as_finished
from sattag.classes import ClassTable
from sattag.config import Config, ModelConfig
from sattag.errors import SattagError
from sattag.features import FeatureSet, feature_names
from sattag.learn.models import ClassResult, ModelSet, PairResult, model_columns
from sattag.learn.sample import Sample


def split_train_valid(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified random split of row indices into (train, valid).

    Each label keeps ``round(fraction * n_label)`` rows for validation, so both sets hold both labels
    in the sample's proportions. Returns sorted int64 index arrays.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {fraction}")
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    train, valid = [], []
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        idx = rng.permutation(idx)
        n_valid = int(round(fraction * idx.size))
        valid.append(idx[:n_valid])
        train.append(idx[n_valid:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(valid))


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties); NaN when one label is absent."""
    y_true = np.asarray(y_true).astype(bool)
    n_pos = int(y_true.sum())
    n_neg = y_true.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.asarray(score, dtype=np.float64))
    return float((ranks[y_true].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def xgb_params(model: ModelConfig, level: str = "pixel") -> dict[str, Any]:
    """XGBoost parameters for one binary model from the model section of the config, for models at
    ``level`` ("pixel" or "cluster": it sets the histogram bins when ``model.max_bin`` does not)."""
    return {
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "tree_method": model.tree_method,
        "max_depth": model.max_depth,
        "eta": model.learning_rate,
        "seed": model.seed,
        "subsample": model.rows_per_tree,
        "colsample_bynode": model.features_per_split,
        "max_bin": model.bins(level),
        "device": model.device,
        "verbosity": 0,
        # XGBoost caches a histogram per tree node (features x bins). Training one depth-15 model on
        # 400 000 random rows of 166 features peaked at 1502 MiB with the default cache and 804 MiB
        # with 1024 nodes, in the same time; the trees are the same (checked bit for bit).
        "max_cached_hist_node": 1024,
    }


@functools.lru_cache(maxsize=None)
def _cuda_problem() -> str | None:
    """Why XGBoost can't train on a CUDA GPU here, or None when it can (checked once per process)."""
    import xgboost as xgb

    if not xgb.build_info().get("USE_CUDA", False):
        return f"this XGBoost {xgb.__version__} build has no CUDA support"
    if shutil.which("nvidia-smi") is not None:
        try:
            r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
            if r.returncode != 0 or "GPU" not in r.stdout:
                return "nvidia-smi lists no GPU"
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"nvidia-smi failed: {e}"
    # A tiny training run on the GPU is the real test (driver, runtime, visible devices).
    import warnings

    X = np.random.default_rng(0).random((64, 2), dtype=np.float32)
    y = (X[:, 0] > 0.5).astype(np.float32)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            booster = xgb.train({"device": "cuda", "tree_method": "hist", "verbosity": 0},
                                xgb.DMatrix(X, label=y), num_boost_round=1)
        if any("cuda" in str(w.message).lower() or "gpu" in str(w.message).lower() for w in caught):
            return "XGBoost fell back to the CPU: " + str(caught[0].message).splitlines()[0]
        cfg = booster.save_config()
        if '"device":"cuda' not in cfg.replace(" ", ""):
            return "XGBoost did not keep device=cuda"
    except xgb.core.XGBoostError as e:
        return "XGBoost cannot use a GPU: " + (str(e).strip().splitlines() or ["unknown error"])[0]
    return None


def check_device(model: ModelConfig) -> None:
    """Raise :class:`SattagError` when ``model.device`` asks for a GPU that is not usable here."""
    if model.device.startswith("cuda") or model.device.startswith("gpu"):
        problem = _cuda_problem()
        if problem is not None:
            raise SattagError(f"model.device={model.device!r} asks for GPU training, but no usable GPU: {problem}; "
                              "set model.device = \"cpu\"")
    elif model.device != "cpu":
        raise SattagError(f"model.device must be 'cpu' or 'cuda', got {model.device!r}")


def _train_local(params, X_tr, y_tr, feature_names, n_trees):
    import xgboost as xgb

    # QuantileDMatrix: hist trees need only the binned matrix, not a float copy.
    dtrain = xgb.QuantileDMatrix(X_tr, label=y_tr, feature_names=feature_names, max_bin=params["max_bin"])
    return xgb.train(params, dtrain, num_boost_round=n_trees)


def _train_dask(client, params, X_tr, y_tr, feature_names, n_trees):
    import dask.array as da
    import xgboost as xgb
    import xgboost.dask  # noqa: F401  (not imported by ``import xgboost``)

    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    # One chunk (at least) per worker, so every worker holds a share of the rows.
    chunk = max(1, -(-X_tr.shape[0] // n_workers))
    dX = da.from_array(X_tr, chunks=(chunk, X_tr.shape[1]))
    dy = da.from_array(y_tr, chunks=(chunk,))
    # verbosity 0 travels to the workers as the global config (keeps their logs quiet).
    with xgb.config_context(verbosity=0):
        dtrain = xgb.dask.DaskQuantileDMatrix(client, dX, dy, feature_names=feature_names,
                                                max_bin=params["max_bin"])
        out = xgb.dask.train(client, params, dtrain, num_boost_round=n_trees)
    return out["booster"]


def train_models(
    samples: Mapping[int, Sample],
    bands: Sequence[str],
    classes: ClassTable,
    config: Config,
    client: Any = None,
    progress: Callable[[int], None] | None = None,
    n_jobs: int | None = None,
    feature_set: FeatureSet | None = None,
    level: str = "pixel",
) -> ModelSet:
    """Train one binary model per class of ``classes``.

    Parameters
    ----------
    samples:
        class id -> (X float32 (n, B), y uint8 (n,)) from :func:`sattag.learn.sample_scenes` /
        :func:`sattag.learn.concat_samples`; columns: the features of ``feature_set`` on ``bands``
        (:func:`sattag.features.feature_names`).
    bands:
        The stack's band names (stored in the model card and checked when models are loaded).
    classes:
        Class table; a class with no sample, or no in-class (or no out-of-class) pixels, is skipped with
        the reason recorded (no model; its predictions are 0).
    config:
        ``config.sample.validation_fraction`` / ``seed`` for the split, ``config.model`` for XGBoost.
    client:
        A ``dask.distributed.Client``: train on its workers, each class whole on one worker
        (``config.model.distributed == "classes"``, the default) or each class across all workers
        through ``xgboost.dask`` (``"rows"``); None: in-process.
    progress:
        Called with 1 after each class (trained or skipped).
    n_jobs:
        In-process only: classes trained at once, one thread each (None: one per core of this process).
    feature_set:
        What the columns of X are (default: the band values alone, ``"spectra"``); recorded in the card,
        so prediction computes the same features.
    level:
        "pixel": the rows of ``samples`` are pixels; "cluster": they are clusters, columns the object
        features (:func:`sattag.learn.models.model_columns`, :func:`cluster_samples`).

    Raises
    ------
    SattagError
        when ``config.model.device`` asks for a GPU that is not usable.
    """
    check_device(config.model)
    bands = tuple(bands)
    feature_set = feature_set or FeatureSet("spectra")
    columns = model_columns(bands, feature_set, level)
    results: dict[int, ClassResult] = {}
    todo: list[tuple[ClassResult, np.ndarray, np.ndarray]] = []
    for cls in classes:
        res = ClassResult(class_id=cls.id, name=cls.name)
        results[cls.id] = res
        sample = samples.get(cls.id)
        if sample is None:
            res.skipped = "no sample for this class"
        else:
            X, y = sample
            if X.ndim != 2 or X.shape[1] != len(columns) or X.shape[0] != y.shape[0]:
                raise ValueError(f"class {cls.id} sample has X {X.shape}, y {y.shape}; "
                                 f"expected (n, {len(columns)}) and (n,) for {feature_set.describe()}")
            res.n_in = int(np.count_nonzero(y))
            res.n_out = int(y.size - res.n_in)
            if res.n_in == 0:
                res.skipped = "no pixels of this class in the training scenes"
            elif res.n_out == 0:
                res.skipped = "every training pixel is in this class: nothing to tell it from"
        if res.skipped is None:
            todo.append((res, X, y))

    boosters = _fit_all(todo, columns, config, client, progress, n_jobs, level)
    for cls in classes:
        if results[cls.id].skipped is not None and progress is not None:
            progress(1)
    return ModelSet(boosters=boosters, bands=bands, classes=classes, config=config,
                    results=results, feature_set=feature_set, level=level)


def _fit_all(todo: Sequence[tuple[ClassResult, np.ndarray, np.ndarray]], columns: Sequence[str], config: Config,
             client: Any, progress: Callable[[int], None] | None, n_jobs: int | None,
             level: str = "pixel") -> dict:
    """Train one binary booster per ``(result, X, y)`` of ``todo``; ``{result.key: booster}``.

    Fills each result (counts, AUC, importances, seconds); ``progress(1)`` after each model.
    """
    boosters: dict = {}
    columns = list(columns)
    if client is not None and config.model.distributed == "classes" and config.model.device == "cpu":
        # Each class whole on one worker: the model does not depend on how many workers there are
        # (xgboost.dask's quantile sketches do), and 10 classes keep several workers busy.
        params = xgb_params(config.model, level)
        futures = []
        for res, X, y in todo:
            X_f, y_f = client.scatter([np.asarray(X), y])  # only the class's rows travel, not a shared table
            futures.append(client.submit(_fit_class_on_worker, res, X_f, y_f, params, columns, config, pure=False))
        # A lost cluster is one ClusterLostError, not an endless wait (sattag._futures).
        for _, out, error in as_finished(client, futures, "train", config.engine.no_workers_timeout,
                                         unit="model(s)"):
            if error is not None:
                raise error
            booster, res = out
            boosters[res.key] = booster
            for i, (r, _, _) in enumerate(todo):  # the filled-in result replaces the one sent
                if r.key == res.key:
                    r.__dict__.update(res.__dict__)
            if progress is not None:
                progress(1)
    elif client is not None or len(todo) <= 1 or config.model.device != "cpu":
        # xgboost.dask: each model uses every worker, so classes go one after another. GPU: one device.
        params = xgb_params(config.model, level)
        for res, X, y in todo:
            boosters[res.key] = _fit_class(res, X, y, params, columns, config, client)
            if progress is not None:
                progress(1)
    elif todo:
        # In-process: one class per core, one thread each. Depth-15 trees have thousands of small
        # nodes; XGBoost's per-node thread synchronisation then costs more than it gains (measured on
        # a busy 2-core machine: a 360 000-row class used 7.6 CPU s on 1 thread, 40 on 2), so classes
        # in parallel use the cores far better. Boosters are the same whatever the order: each class has its own seed and data.
        jobs = min(_n_cores() if n_jobs is None else max(1, int(n_jobs)), len(todo))
        params = dict(xgb_params(config.model, level), nthread=max(1, _n_cores() // jobs))
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:  # XGBoost frees the GIL
            futures = {pool.submit(_fit_class, res, X, y, params, columns, config, None): res.key
                       for res, X, y in todo}
            for fut in concurrent.futures.as_completed(futures):
                boosters[futures[fut]] = fut.result()
                if progress is not None:
                    progress(1)
    return dict(sorted(boosters.items()))


def train_pairs(model_set: ModelSet, samples: Mapping[int, Sample], pairs: Sequence[tuple[int, int]],
                client: Any = None, progress: Callable[[int], None] | None = None,
                n_jobs: int | None = None) -> ModelSet:
    """Train a pairwise model for each ``(first id, second id)`` of ``pairs`` into ``model_set``.

    A pair's model learns ``first``'s in-class pixels (label 1) against ``second``'s (label 0),
    both taken from the one-vs-all ``samples`` (the same features and scenes; a pixel in both
    classes' masks is left out of both). It answers where both one-vs-all models fire, so it only
    has to tell the two apart; its output is the probability of ``first``. A pair with no pixels of
    one class is recorded as skipped. Sets ``model_set.pairs`` and ``model_set.pair_results``;
    ``progress(1)`` after each pair.
    """
    columns = model_set.columns
    config = model_set.config
    todo = []
    results: dict[tuple[int, int], PairResult] = {}
    for first, second in pairs:
        res = PairResult(class_id=first, other_id=second,
                         name=f"{model_set.classes.by_id(first).name} / {model_set.classes.by_id(second).name}")
        results[res.key] = res
        parts = []
        for cid in (first, second):
            sample = samples.get(cid)
            parts.append(np.zeros((0, len(columns)), np.float32) if sample is None else sample[0][sample[1] == 1])
        X_first, X_second = _drop_shared_rows(*parts)
        res.n_in, res.n_out = len(X_first), len(X_second)
        if not res.n_in or not res.n_out:
            res.skipped = f"no pixels of {res.name.split(' / ')[0 if not res.n_in else 1]} in the training scenes"
            if progress is not None:
                progress(1)
            continue
        X = np.concatenate([X_first, X_second])
        y = np.concatenate([np.ones(res.n_in, np.uint8), np.zeros(res.n_out, np.uint8)])
        todo.append((res, X, y))
    model_set.pairs = _fit_all(todo, columns, config, client, progress, n_jobs, model_set.level)
    model_set.pair_results = results
    return model_set


def _drop_shared_rows(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` without the rows they share (a pixel sampled for both classes: in both masks)."""
    if not len(a) or not len(b):
        return a, b
    va = np.ascontiguousarray(a).view(np.dtype((np.void, a.dtype.itemsize * a.shape[1]))).ravel()
    vb = np.ascontiguousarray(b).view(np.dtype((np.void, b.dtype.itemsize * b.shape[1]))).ravel()
    shared = np.intersect1d(va, vb)
    if not shared.size:
        return a, b
    return a[~np.isin(va, shared)], b[~np.isin(vb, shared)]


def _n_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _fit_class_on_worker(res: ClassResult, X: np.ndarray, y: np.ndarray, params: dict,
                         feature_names: list[str], config: Config):
    """:func:`_fit_class` as a Dask task: the booster and the filled-in result travel back."""
    booster = _fit_class(res, X, y, params, feature_names, config, None)
    return booster, res


def _fit_class(res: ClassResult, X: np.ndarray, y: np.ndarray, params: dict, feature_names: list[str],
               config: Config, client: Any):
    """Split, train, validate one class; fills ``res`` (counts, AUC, importance, seconds), returns the booster."""
    t0 = time.perf_counter()
    tr, va = split_train_valid(y, config.sample.validation_fraction, config.sample.seed + res.class_id)
    res.n_train, res.n_valid = int(tr.size), int(va.size)
    X_tr, y_tr = X[tr], y[tr].astype(np.float32)
    # A class with fewer pixels than asked leaves the sample unbalanced (e.g. 300 vehicle pixels vs
    # 200 000 others). Weighting its pixels by n_out/n_in restores the 50/50 prior every other class
    # trains at, so probabilities (and the 0.5 threshold) mean the same for every class; without it
    # the tiny hessians of a ~0.2 % prior stop trees from splitting and the model stays constant.
    n_pos = float(y_tr.sum())
    res.pos_weight = (y_tr.size - n_pos) / n_pos
    params = dict(params, scale_pos_weight=res.pos_weight)
    if client is None:
        booster = _train_local(params, X_tr, y_tr, feature_names, config.model.n_trees)
    else:
        booster = _train_dask(client, params, X_tr, y_tr, feature_names, config.model.n_trees)
    del X_tr, y_tr
    # Predict on the CPU from numpy rows (no device copies) whatever device trained it, on all cores.
    booster.set_param({"device": "cpu", "nthread": _n_cores()})
    if va.size:
        score = booster.inplace_predict(np.ascontiguousarray(X[va]), validate_features=False)
        res.auc = roc_auc(y[va], score)
    gain = booster.get_score(importance_type="total_gain")
    res.importance = {b: float(gain.get(b, 0.0)) for b in feature_names}
    res.seconds = time.perf_counter() - t0
    return booster


def auc_table(model_set: ModelSet) -> pd.DataFrame:
    """One row per class: class_id, class, n_in, n_out, n_train, n_valid, auc, seconds, skipped
    (the table written to ``RUN/auc.csv``)."""
    rows = []
    for cls in model_set.classes:
        r = model_set.results.get(cls.id) or ClassResult(cls.id, cls.name, skipped="not trained")
        rows.append({"class_id": cls.id, "class": cls.name, "n_in": r.n_in, "n_out": r.n_out,
                     "n_train": r.n_train, "n_valid": r.n_valid, "auc": r.auc, "seconds": round(r.seconds, 3),
                     "skipped": r.skipped or ""})
    return pd.DataFrame(rows, columns=["class_id", "class", "n_in", "n_out", "n_train", "n_valid", "auc",
                                       "seconds", "skipped"])


def samples_auc(model_set: ModelSet, samples: Mapping[int, Sample]) -> pd.DataFrame:
    """AUC of each class's model on other pixels (e.g. a balanced sample of held-out scenes).

    ``samples``: class id -> (X float32 (n, B) in ``model_set.bands`` order, y uint8 (n,)). Returns one
    row per class of ``model_set.classes``: class_id, class, n_in, n_out, auc (NaN when a class has no
    model, or its sample lacks pixels in or out of it).
    """
    rows = []
    for i, cls in enumerate(model_set.classes):
        X, y = samples.get(cls.id, (np.zeros((0, len(model_set.bands)), np.float32), np.zeros(0, np.uint8)))
        n_in = int(np.count_nonzero(y))
        auc = float("nan")
        if cls.id in model_set.boosters and 0 < n_in < y.size:
            auc = roc_auc(y, model_set.predict_proba(X)[:, i])  # predict_proba reads TakenRows out
        rows.append({"class_id": cls.id, "class": cls.name, "n_in": n_in, "n_out": int(y.size - n_in), "auc": auc})
    return pd.DataFrame(rows, columns=["class_id", "class", "n_in", "n_out", "auc"])


# ------------------------------------------------------------------------------------------ auc.csv
#: Columns of ``RUN/auc.csv`` and their kinds (:func:`sattag._files.read_csv`): ``split`` (``in-sample``:
#: the 90/10 pixel split of the training scenes, :func:`auc_table`; ``held-out``: scenes the models
#: never saw, :func:`samples_auc`), ``measured_on`` (those words), the class, its pixel counts, the
#: AUC (NaN when not measured), training seconds and why a class was skipped. A held-out row has no
#: ``n_train``, ``n_valid``, ``seconds`` (empty: <NA> / NaN) and no ``skipped`` (empty text).
AUC_COLUMNS = {"split": "str", "measured_on": "str", "class_id": "int", "class": "str", "n_in": "int",
               "n_out": "int", "n_train": "Int64", "n_valid": "Int64", "auc": "float", "seconds": "float",
               "skipped": "str"}

#: ``measured_on`` of each split of ``auc.csv``.
AUC_MEASURED_ON = {"in-sample": "90/10 pixel split of training scenes", "held-out": "held-out scenes"}


def write_auc(path, in_sample: pd.DataFrame, held_out: pd.DataFrame | None = None):
    """Write ``RUN/auc.csv`` atomically: the in-sample rows (:func:`auc_table`), then the held-out rows
    (:func:`samples_auc`, when scenes were held out), under :data:`AUC_COLUMNS`."""
    from sattag._files import atomic_path

    parts = [in_sample.assign(split="in-sample", measured_on=AUC_MEASURED_ON["in-sample"])]
    if held_out is not None:
        parts.append(held_out.assign(split="held-out", measured_on=AUC_MEASURED_ON["held-out"]))
    table = pd.concat(parts, ignore_index=True).reindex(columns=list(AUC_COLUMNS))
    table["skipped"] = table["skipped"].fillna("")
    table = table.astype({c: "Int64" for c, kind in AUC_COLUMNS.items() if kind in ("int", "Int64")})
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return path


def read_auc(path) -> pd.DataFrame:
    """Read ``RUN/auc.csv``: :data:`AUC_COLUMNS` with their dtypes. Raises
    :class:`sattag.errors.InputError` naming the file when it cannot be read or lacks a column."""
    from sattag._files import read_csv

    return read_csv(path, AUC_COLUMNS)
