"""evaluate stage: DSTL polygon Jaccard and pixel Jaccard, strict reading of WKT CSVs."""
from sattag.evaluate.jaccard import MEAN_ID, combine_scores, dstl_jaccard, pixel_counts, pixel_jaccard, score_table
from sattag.evaluate.submission import read_submission_csv, score_files

__all__ = ["MEAN_ID", "combine_scores", "dstl_jaccard", "pixel_counts", "pixel_jaccard", "score_table",
           "read_submission_csv", "score_files"]
