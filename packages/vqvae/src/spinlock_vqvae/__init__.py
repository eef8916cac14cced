"""Categorical hierarchical VQ-VAE tokenizer for Spinlock operator features (torch)."""

__version__ = "0.0.1"
