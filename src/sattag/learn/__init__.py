"""learn stage: balanced pixel samples, one-vs-all XGBoost models, validation AUC, model files + card.

Scene by scene (the engine may spread these over workers)::

    counts = {s: class_pixel_counts(masks[s]) for s in scenes}
    quotas = allocate_quotas(counts, config.sample)
    parts = [sample_scene(data[s], masks[s], quotas[s], config.sample.seed, scene_id=s) for s in scenes]
    models = train_models(concat_samples(parts), bands, classes, config, client=None)
    models.save(run.models); write_auc(run.auc_csv, auc_table(models))
    models = load_models(run.models, bands, classes); p = models.predict_proba(X)  # (N, C)
"""
from sattag.learn.models import (ClassResult, ModelSet, PairResult, load_models, model_file_name,
                                 pair_file_name, read_card, read_card_split)
from sattag.learn.relight import Relight, draw_relights
from sattag.learn.sample import (
    allocate_quotas,
    cap_samples,
    class_pixel_counts,
    cluster_samples,
    concat_samples,
    sample_counts,
    sample_scene,
    sample_scenes,
    scene_entropy,
)
from sattag.learn.split import (HELD_OUT, IN_SAMPLE, SceneSplit, kfold_scenes, split_for, split_scenes,
                                tuning_folds, validation_scenes, scene_strips)
from sattag.learn.thresholds import (best_cluster_threshold, best_threshold, cluster_threshold_counts,
                                     pixel_threshold_counts, pooled_threshold, tune_cluster_thresholds, tune_thresholds)
from sattag.learn.train import (AUC_COLUMNS, auc_table, check_device, read_auc, roc_auc, samples_auc, split_train_valid,
                                train_models, train_pairs, write_auc)

__all__ = [
    "Relight",
    "draw_relights",
    "read_card",
    "best_threshold",
    "split_for",
    "tune_thresholds",
    "tune_cluster_thresholds",
    "best_cluster_threshold",
    "cluster_threshold_counts",
    "pixel_threshold_counts",
    "pooled_threshold",
    "validation_scenes",
    "tuning_folds",
    "scene_strips",
    "AUC_COLUMNS",
    "HELD_OUT",
    "IN_SAMPLE",
    "SceneSplit",
    "kfold_scenes",
    "read_card_split",
    "samples_auc",
    "split_scenes",
    "ClassResult",
    "ModelSet",
    "allocate_quotas",
    "cap_samples",
    "cluster_samples",
    "auc_table",
    "check_device",
    "class_pixel_counts",
    "concat_samples",
    "load_models",
    "model_file_name",
    "roc_auc",
    "sample_counts",
    "sample_scene",
    "sample_scenes",
    "scene_entropy",
    "split_train_valid",
    "train_models",
    "train_pairs",
    "PairResult",
    "pair_file_name",
    "read_auc",
    "write_auc",
]
