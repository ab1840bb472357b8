"""gan-bench: a Hydra-driven experiment runner for GAN training-stabilisation research.

From Python: ``from gan_bench.api import compose_config, train, load_metrics`` (:mod:`gan_bench.api`).
"""

import os as _os

# OpenMP threads that spin while waiting (libgomp's default) slow small CPU models 20x as soon as another
# process shares the cores (measured here: 948 ms vs 50 ms per DCGAN step on 2 cores). Passive waiting costs
# nothing measurable when the cores are free. It takes effect if gan_bench is imported before torch (the CLI
# does); export OMP_WAIT_POLICY=ACTIVE to opt out.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# PyTorch's CPU allocator puts tensors of 2 MB or more on transparent huge pages (madvise) with this set. Without it,
# large tensors that each step allocates afresh (K stacked discriminators' gradients, Adam's temporaries on them) are
# mmap'd and page-faulted 4 KB at a time at every step: measured on the MNIST MLPs with K = 24 on the CPU, 200 ms of
# a 1.3 s step in the stacking of the gradients alone (85 ms with huge pages), slower than K separate modules whose
# small tensors the heap reuses. Read once, at torch's first allocation: the same import-order rule as above;
# export THP_MEM_ALLOC_ENABLE=0 to opt out.
_os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

__version__ = "0.1.0"

