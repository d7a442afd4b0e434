"""segment stage: spectral clusters of adjacent pixels (numba region growing + small-cluster merge)."""
from sattag.segment.cluster import ClusterTable, cluster_pixels

__all__ = ["ClusterTable", "cluster_pixels"]
