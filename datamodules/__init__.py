"""Datamodules for lightning-gans: images in [-1, 1], `data_dir` per the convention in :mod:`datamodules.base`."""

from datamodules.base import DATA_DIR_ENV, DatasetNotFoundError, ImageDataModule, resolve_data_dir
from datamodules.captions import CaptionFolderDataModule, CelebACaptionsDataModule, MNISTCaptionsDataModule
from datamodules.celeba import CelebADataModule
from datamodules.mixtures import GaussianMixtureDataModule
from datamodules.mnist import MNISTDataModule
from datamodules.paired import PairedImageDataModule
from datamodules.superres import SuperResolutionDataModule
from datamodules.unpaired import UnpairedImageDataModule

__all__ = [
    "DATA_DIR_ENV",
    "DatasetNotFoundError",
    "ImageDataModule",
    "resolve_data_dir",
    "CaptionFolderDataModule",
    "CelebACaptionsDataModule",
    "MNISTCaptionsDataModule",
    "CelebADataModule",
    "GaussianMixtureDataModule",
    "MNISTDataModule",
    "PairedImageDataModule",
    "SuperResolutionDataModule",
    "UnpairedImageDataModule",
]
