"""vectorize stage: class masks -> valid polygons (holes kept), simplified, written as GeoJSON, the
DSTL submission CSV and GeoParquet."""
from sattag.vectorize.polygons import (as_multipolygon, finish_polygons, join_band_seams, join_bands, join_seams,
                                      mask_to_polygons, masks_to_polygons,
                                      pixel_polygons, settle_tile_polygons, tile_pixel_polygons)
from sattag.vectorize.writers import (read_geojson_polygons, read_geoparquet, write_geojson, write_geoparquet,
                                     write_submission_csv)

__all__ = ["as_multipolygon", "finish_polygons", "join_band_seams", "join_bands", "join_seams", "mask_to_polygons", "settle_tile_polygons", "tile_pixel_polygons", "masks_to_polygons", "pixel_polygons",
           "read_geojson_polygons", "read_geoparquet", "write_geojson", "write_geoparquet", "write_submission_csv"]
