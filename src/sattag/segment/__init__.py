"""segment stage: spectral clusters of adjacent pixels (numba region growing + small-cluster merge),
and their files (cluster-id image, cluster table)."""
from sattag.segment.cluster import ClusterTable, band_spread, cluster_pixels
from sattag.segment.files import read_cluster_ids, read_cluster_table, write_cluster_ids, write_cluster_table

__all__ = ["ClusterTable", "band_spread", "cluster_pixels", "read_cluster_ids", "read_cluster_table", "write_cluster_ids",
           "write_cluster_table"]
