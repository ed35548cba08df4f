"""reprolab: reproduce ten computer-vision papers on shared PyTorch code."""

__version__ = "0.1.0"
