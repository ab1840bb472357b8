"""Domain-classifier FID: the Fréchet distance on features of a classifier trained on the dataset itself.

Inception features mean little for 28x28 digits; the multi-discriminator GAN papers (e.g. Durugkar et al. 2017,
Albuquerque et al. 2019) use a classifier of the domain instead, with the 10-d log-softmax output as features.

* ``lenet``: LeNet-5 (LeCun et al. 1998) for gray images (MNIST, Fashion-MNIST, 8x8/16x16 digits); inputs are
  resized bilinearly to 32x32, its native size.
* ``resnet18``: torchvision's ResNet-18 with a 3x3 stride-1 stem and no max-pool (the usual CIFAR variant); inputs
  are brought to 32x32 first (64x64 -> 32x32 by 2x2 averaging, as the multi-discriminator paper downsamples).

Features: ``layer="logits"`` gives the log-softmax output (log-probabilities: the logits shifted by a per-sample
constant), ``layer="penultimate"`` the input of the last linear layer (LeNet: 84-d, ResNet-18: 512-d).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gan_bench.errors import UnsafeFileError
from gan_bench.files import atomic_write
from gan_bench.loading import load_tensors
from gan_bench.metrics.errors import MetricsError

ARCHS = ("lenet", "resnet18")
LAYERS = ("logits", "penultimate")
INPUT_SIZE = 32


def _to_32(x: torch.Tensor) -> torch.Tensor:
    """Bring NCHW images to 32x32: exact 2^k x 2^k averaging for multiples of 32, bilinear otherwise."""
    h, w = x.shape[-2:]
    if (h, w) == (INPUT_SIZE, INPUT_SIZE):
        return x
    if h == w and h % INPUT_SIZE == 0:
        return F.avg_pool2d(x, h // INPUT_SIZE)
    return F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)


class LeNet5(nn.Module):
    """conv5(6) - pool - conv5(16) - pool - fc120 - fc84 - fc(classes), ReLU activations, 32x32 input."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(84, num_classes)

    def penultimate(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(_to_32(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.penultimate(x))


class ResNet18Small(nn.Module):
    """torchvision ResNet-18 adapted to 32x32 inputs: 3x3 stride-1 stem, no max-pool."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        from torchvision.models import resnet18

        net = resnet18(weights=None, num_classes=num_classes)
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        self.head = net.fc
        net.fc = nn.Identity()
        self.body = net

    def penultimate(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(_to_32(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.penultimate(x))


def build_classifier(arch: str, in_channels: int, num_classes: int = 10) -> nn.Module:
    if arch == "lenet":
        return LeNet5(in_channels, num_classes)
    if arch == "resnet18":
        return ResNet18Small(in_channels, num_classes)
    raise MetricsError(f"unknown classifier arch {arch!r}; valid: {', '.join(ARCHS)}")


def _check_data(x: torch.Tensor, y: torch.Tensor, name: str) -> None:
    if x.ndim != 4 or y.ndim != 1 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        shapes = f"{tuple(x.shape)} and {tuple(y.shape)}"
        raise MetricsError(f"{name}: need images [N, C, H, W] and labels [N], got {shapes}")


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Fraction of ``x`` classified as ``y``."""
    device = next(model.parameters()).device
    model.eval()
    correct = sum(
        int((model(x[i : i + batch_size].to(device)).argmax(1) == y[i : i + batch_size].to(device)).sum())
        for i in range(0, x.shape[0], batch_size)
    )
    return correct / x.shape[0]


def train_classifier(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    arch: str = "lenet",
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> tuple[nn.Module, float]:
    """Train with Adam and cross-entropy on images in [-1, 1]; returns ``(model in eval mode, test accuracy)``."""
    _check_data(train_x, train_y, "train")
    _check_data(test_x, test_y, "test")
    if train_x.shape[1:] != test_x.shape[1:]:
        shapes = f"{tuple(train_x.shape[1:])} vs {tuple(test_x.shape[1:])}"
        raise MetricsError(f"train and test images differ in shape: {shapes}")
    torch.manual_seed(seed)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    model = build_classifier(arch, train_x.shape[1], num_classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(train_x.shape[0], generator=gen).split(batch_size):
            loss = F.cross_entropy(model(train_x[idx].to(device)), train_y[idx].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval(), accuracy(model, test_x, test_y)


def save_classifier(path: str | Path, model: nn.Module, meta: dict[str, Any]) -> Path:
    """Save the weights with ``meta`` (e.g. accuracy, dataset) plus what is needed to rebuild the model."""
    arch = {LeNet5: "lenet", ResNet18Small: "resnet18"}.get(type(model))
    if arch is None:
        raise MetricsError(f"cannot save a {type(model).__name__}; build it with build_classifier")
    head = model.head
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    record = {**meta, "arch": arch, "in_channels": first_conv.in_channels, "num_classes": head.out_features}
    return atomic_write(path, lambda f: torch.save({"state_dict": model.state_dict(), "meta": record}, f))


def load_classifier(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """``(model in eval mode on device, meta)`` from a :func:`save_classifier` file."""
    path = Path(path)
    if not path.is_file():
        raise MetricsError(f"classifier file {path} does not exist")
    try:
        payload = load_tensors(path, f"classifier file {path}")
        meta = payload["meta"]
        model = build_classifier(meta["arch"], meta["in_channels"], meta["num_classes"])
        model.load_state_dict(payload["state_dict"])
    except (MetricsError, UnsafeFileError):
        raise
    except Exception as exc:
        raise MetricsError(f"{path} is not a gan-bench classifier file: {str(exc).splitlines()[0]}") from exc
    return model.to(device).eval(), meta


@torch.no_grad()
def classifier_outputs(model: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Both feature layers of images in [-1, 1] from one forward pass: ``{"logits": log-softmax output,
    "penultimate": last hidden layer}``."""
    expected = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
    if images.ndim != 4 or images.shape[1] != expected:
        shape = tuple(images.shape)
        raise MetricsError(f"the classifier takes NCHW images with {expected} channels, got shape {shape}")
    hidden = model.penultimate(images.float())
    return {"logits": torch.log_softmax(model.head(hidden), dim=1), "penultimate": hidden}


def classifier_features(model: nn.Module, images: torch.Tensor, layer: str = "logits") -> torch.Tensor:
    """Features of images in [-1, 1]: ``"logits"`` = log-softmax output, ``"penultimate"`` = last hidden layer."""
    if layer not in LAYERS:
        raise MetricsError(f"unknown classifier layer {layer!r}; valid: {', '.join(LAYERS)}")
    return classifier_outputs(model, images)[layer]
