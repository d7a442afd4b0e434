"""sattag: find and outline objects on multispectral satellite scenes, at scale."""
from sattag.classes import DSTL_CLASSES, ClassTable, ObjectClass
from sattag.config import Config, load_config
from sattag.errors import SattagError
from sattag.scene import BandFile, Grid, Scene, Stack

__version__ = "0.1.0"

__all__ = [
    "BandFile",
    "ClassTable",
    "Config",
    "DSTL_CLASSES",
    "Grid",
    "ObjectClass",
    "SattagError",
    "Scene",
    "Stack",
    "load_config",
    "__version__",
]
