"""Image backbones shared by the models."""
