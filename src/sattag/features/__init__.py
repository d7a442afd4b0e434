"""features stage: what the models see of each pixel, computed from a scene's band stack.

Between the stack and the models. A :class:`FeatureSet` names what is computed: ``"spectra"`` is the
seed's band values alone; ``"context"`` adds normalised-difference indices (where the bands exist)
and spatial context at several scales (local mean and spread of brightness and vegetation, edge
strength), which is what a pixel's spectrum cannot tell: a road from a roof of the same asphalt,
a river from a pond, anything at all in a panchromatic scene.

Feature maps are computed one at a time over the whole stack (fast separable box filters, OpenCV),
and only what a consumer needs is kept: the sampled pixels' rows for training
(:func:`pixel_features`), per-cluster means for prediction (:func:`cluster_features`). So memory
stays at the stack plus a few (H, W) maps, whatever the number of features.
"""
from sattag.features.compute import cluster_features, feature_halo, feature_maps, pixel_features
from sattag.features.spec import FEATURE_SETS, FeatureSet, feature_names

__all__ = ["FEATURE_SETS", "FeatureSet", "cluster_features", "feature_halo", "feature_maps", "feature_names", "pixel_features"]
