"""Self-supervised behavioural representations (JAX/Flax) with checkpoint clustering analysis."""

__version__ = "0.0.1"
