"""segment stage: spectral clusters of adjacent pixels (numba region growing + small-cluster merge),
and their files (cluster-id image, cluster table)."""
from sattag.segment.cluster import (ClusterTable, band_spread, cluster_pixels, spread_from_percentiles, spread_step,
                                    tolerance_units)
from sattag.segment.stitch import seam_pairs, stitch_groups
from sattag.segment.files import read_cluster_ids, read_cluster_table, write_cluster_ids, write_cluster_table

__all__ = ["ClusterTable", "band_spread", "cluster_pixels", "seam_pairs", "spread_from_percentiles", "spread_step", "stitch_groups",
           "tolerance_units", "read_cluster_ids", "read_cluster_table", "write_cluster_ids",
           "write_cluster_table"]
