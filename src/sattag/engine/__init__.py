"""The engine: stages composed over scenes on Dask (a LocalCluster by default, or an address)."""
from sattag.engine.cluster import open_client
from sattag.engine.run import (
    Session,
    explore,
    ingest,
    open_session,
    predict,
    report,
    run_all,
    score,
    select_scenes,
    split,
    train,
)
from sattag.engine.folds import cross_validate
from sattag.engine.scenes import ClusterLostError, Failure, StageResult, Timing, map_scenes
from sattag.engine.stages import STAGES, Stage, stage_named

__all__ = ["STAGES", "Stage", "stage_named", "ClusterLostError", "Failure", "Session", "cross_validate", "split", "StageResult", "Timing", "explore", "ingest", "map_scenes", "open_client",
           "open_session", "predict", "report", "run_all", "score", "select_scenes", "train"]
