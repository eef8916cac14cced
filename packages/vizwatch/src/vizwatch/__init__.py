"""vizwatch: watch any model learn.

A trainer-core visualization plugin that snapshots the latent space during training (t-SNE, UMAP
or PCA, warm-started and Procrustes-aligned so frames are comparable), plus the ``vizwatch``
command: an imbalanced classifier trainer, animations and a run listing.
"""

__version__ = "0.1.0"
