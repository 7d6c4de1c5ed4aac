"""Datasets: named cohorts of images with ground truth, stored in the DuckDB file, and runs
of a pipeline over them (traced, judged, registered by name for ``vlmscope diff``)."""

from vlmscope.dataset.core import Dataset, DatasetRow
from vlmscope.dataset.images import ImageDecodeError, decode_image, pipeline_image
from vlmscope.dataset.runner import ANSWER_MODEL, DatasetRun

__all__ = ["ANSWER_MODEL", "Dataset", "DatasetRow", "DatasetRun", "ImageDecodeError",
           "decode_image", "pipeline_image"]
