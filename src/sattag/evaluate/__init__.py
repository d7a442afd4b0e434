"""evaluate stage: DSTL polygon Jaccard and pixel Jaccard, strict reading of WKT CSVs, the score files."""
from sattag.evaluate.jaccard import (MEAN_ID, combine_scores, dstl_jaccard, pixel_counts, pixel_jaccard,
                                    polygon_counts, score_table)
from sattag.evaluate.scores import (CV_SCORES_COLUMNS, CV_SUMMARY_COLUMNS, SCORES_COLUMNS, read_cv_scores,
                                    read_cv_summary, read_scores, write_cv_scores, write_cv_summary, write_scores)
from sattag.evaluate.submission import read_submission_csv, score_files

__all__ = ["CV_SCORES_COLUMNS", "CV_SUMMARY_COLUMNS", "MEAN_ID", "SCORES_COLUMNS", "combine_scores", "dstl_jaccard",
           "pixel_counts", "polygon_counts", "pixel_jaccard", "read_cv_scores", "read_cv_summary", "read_scores", "read_submission_csv",
           "score_files", "score_table", "write_cv_scores", "write_cv_summary", "write_scores"]
