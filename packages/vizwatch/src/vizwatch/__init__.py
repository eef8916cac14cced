"""Latent-space snapshots during training (t-SNE/UMAP/PCA) and animations."""

__version__ = "0.0.1"
