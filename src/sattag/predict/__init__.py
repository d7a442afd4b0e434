"""predict stage: per-cluster class probabilities, thresholds and overlap/size rules, class masks.

It predicts on the clusters of the segment stage: ``sattag.segment.cluster_pixels`` first, then
:func:`predict_clusters`. Its files (probabilities, rule records): ``sattag.predict.files``.
"""
from sattag.predict.files import (RULE_KINDS, probability_frame, read_probabilities, read_rules, write_prediction,
                                  write_probabilities, write_rules)
from sattag.predict.masks import PredictResult, class_masks, group_flags, predict_clusters
from sattag.predict.probabilities import (cluster_probabilities, mean_by_cluster, paint, pair_decider,
                                          sample_cluster_pixels)
from sattag.predict.rules import (RULE_COLUMNS, PairDecider, apply_rules, group_sizes, neighbour_any, threshold_flags,
                                  with_tuned_thresholds)

__all__ = ["pair_decider", "mean_by_cluster", "sample_cluster_pixels", "PredictResult", "RULE_COLUMNS", "RULE_KINDS", "PairDecider", "apply_rules", "class_masks", "cluster_probabilities", "group_flags",
           "group_sizes", "neighbour_any", "paint", "predict_clusters", "probability_frame", "read_probabilities",
           "read_rules", "threshold_flags", "with_tuned_thresholds", "write_prediction", "write_probabilities",
           "write_rules"]
