"""Datasets: embedded (digits, 2-D mixtures) and torchvision sets, held in memory when they fit.

``load_dataset(cfg)`` returns an :class:`InMemoryData` (one uint8 / float tensor on the training device,
batches drawn by index) or a :class:`StreamingData` (a DataLoader for sets too large for memory).
"""
from gan_bench.data.core import IMAGE_DATASETS, MIXTURES, DatasetName, InMemoryData, load_dataset, mixture_centres
from gan_bench.data.streaming import StreamingData

__all__ = ["DatasetName", "IMAGE_DATASETS", "InMemoryData", "MIXTURES", "StreamingData", "load_dataset",
           "mixture_centres"]
