"""Datamodules for lightning-gans: images in [-1, 1], `data_dir` per the convention in :mod:`datamodules.base`."""

from datamodules.base import DATA_DIR_ENV, DatasetNotFoundError, ImageDataModule, resolve_data_dir

__all__ = ["DATA_DIR_ENV", "DatasetNotFoundError", "ImageDataModule", "resolve_data_dir"]
