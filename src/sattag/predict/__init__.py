"""predict stage: per-cluster class probabilities, thresholds and overlap/size rules, class masks."""
from sattag.predict.masks import (PredictResult, class_masks, predict_scene, probability_frame, read_labels,
                                  write_cluster_table, write_labels, write_masks, write_prediction,
                                  write_probabilities)
from sattag.predict.probabilities import cluster_probabilities, paint
from sattag.predict.rules import RULE_COLUMNS, apply_rules, group_sizes, neighbour_any, threshold_flags

__all__ = ["PredictResult", "RULE_COLUMNS", "apply_rules", "class_masks", "cluster_probabilities",
           "group_sizes", "neighbour_any", "paint", "predict_scene", "probability_frame", "read_labels", "threshold_flags",
           "write_cluster_table", "write_labels", "write_masks", "write_prediction", "write_probabilities"]
