"""Callbacks: sample grids during training, image files from ``predict``, evaluation metrics."""

from lightning_gans.callbacks.evaluation import EvaluationCallback
from lightning_gans.callbacks.image_writer import ImageWriter
from lightning_gans.callbacks.sample_grid import SampleGrid

__all__ = ["EvaluationCallback", "ImageWriter", "SampleGrid"]
