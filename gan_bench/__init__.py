"""gan-bench: a Hydra-driven experiment runner for GAN training-stabilisation research."""

import os as _os

# OpenMP threads that spin while waiting (libgomp's default) slow small CPU models 20x as soon as another
# process shares the cores (measured here: 948 ms vs 50 ms per DCGAN step on 2 cores). Passive waiting costs
# nothing measurable when the cores are free. It takes effect if gan_bench is imported before torch (the CLI
# does); export OMP_WAIT_POLICY=ACTIVE to opt out.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
