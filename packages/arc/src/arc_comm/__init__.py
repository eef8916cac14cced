"""Emergent communication on real ARC grids (torch) with a training web app."""

__version__ = "0.0.1"
