"""gan-bench: a Hydra-driven experiment runner for GAN training-stabilisation research."""

__version__ = "0.1.0"
