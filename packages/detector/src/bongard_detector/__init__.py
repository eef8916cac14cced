"""Bongard-LOGO System 1 shape detector with stage checkpointing (torch/torchvision)."""

__version__ = "0.0.1"
