"""Image sets too large for memory, streamed through a DataLoader; an unreadable file is a :class:`BadFile` in place
of its image, so that a loader's worker never raises."""
from __future__ import annotations

import logging
from typing import Any, Iterator, NamedTuple

import torch

from gan_bench.errors import DataError

log = logging.getLogger("gan_bench")


class BadFile(NamedTuple):
    """An image file that could not be read, in place of its image (so that a DataLoader worker never raises)."""

    path: str
    reason: str


def bad_file_error(bad: BadFile) -> DataError:
    return DataError(f"cannot read image {bad.path} ({bad.reason}); fix or remove it, or add dataset.on_bad_file=skip")


def collate_images(items: list) -> tuple[torch.Tensor | None, list[BadFile]]:
    """A DataLoader batch as (the images that could be read, stacked; the files that could not)."""
    good = [x for x in items if isinstance(x, torch.Tensor)]
    return (torch.stack(good) if good else None), [x for x in items if isinstance(x, BadFile)]


class StreamingData:
    """A dataset too large for memory, streamed through a DataLoader (images in [-1, 1]). An unreadable file stops the
    run with one line naming it, or with ``on_bad_file="skip"`` is logged, recorded in ``skipped`` and replaced by the
    next readable image (a batch always has ``batch_size`` images)."""

    streaming = True
    kind = "image"

    def __init__(self, dataset: Any, *, key: str, shape: tuple[int, ...], batch_size: int, workers: int = 2,
                 on_bad_file: str = "error"):
        self.dataset, self.key, self._shape = dataset, key, shape
        self.batch_size, self.workers, self.on_bad_file = batch_size, workers, on_bad_file
        self.labels = None
        self.skipped: list[str] = []
        self._iter: Iterator | None = None
        self._pending: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    def _readable(self, batch: tuple) -> torch.Tensor | None:
        """The images of a loader batch; unreadable files raise, or are logged and skipped."""
        images, bad = batch
        for b in bad:
            if self.on_bad_file != "skip":
                raise bad_file_error(b)
            log.warning("skipped unreadable image %s (%s)", b.path, b.reason)
            self.skipped.append(b.path)
        return images

    def next_batch(self, device: torch.device) -> torch.Tensor:
        have = sum(len(p) for p in self._pending)
        while have < self.batch_size:
            if self._iter is None:
                self._iter = iter(self._loader())
            try:
                images = self._readable(next(self._iter))
            except StopIteration:
                self._iter = None
                continue
            if images is not None:
                self._pending.append(images)
                have += len(images)
        x = torch.cat(self._pending)
        self._pending = [x[self.batch_size:]] if len(x) > self.batch_size else []
        return x[: self.batch_size].to(device, non_blocking=True).float().mul_(2.0).sub_(1.0)

    def _loader(self) -> torch.utils.data.DataLoader:
        g = torch.Generator().manual_seed(int(torch.randint(2**62, (1,)).item()))
        return torch.utils.data.DataLoader(self.dataset, batch_size=self.batch_size, shuffle=True, drop_last=True,
                                           num_workers=self.workers, generator=g, pin_memory=torch.cuda.is_available(),
                                           collate_fn=collate_images)

    def chunks(self, size: int) -> Iterator[torch.Tensor]:
        loader = torch.utils.data.DataLoader(self.dataset, batch_size=size, num_workers=self.workers,
                                             collate_fn=collate_images)
        for batch in loader:
            x = self._readable(batch)
            if x is not None:
                yield x.float().mul_(2.0).sub_(1.0)
