"""Datasets: the on-disk format (`format`), importers (`camvid`, `rellis`, and the synthetic
and rosbag ones) and the torch Dataset used by training and evaluation (`dataset`).

Only the format is imported here; torch is imported by `meco_core.data.dataset` alone so
that converters and the CLI stay light.
"""
from meco_core.data.format import FORMAT, DatasetFormatError, DatasetReader, DatasetWriter, Sample

__all__ = ["FORMAT", "DatasetFormatError", "DatasetReader", "DatasetWriter", "Sample"]
