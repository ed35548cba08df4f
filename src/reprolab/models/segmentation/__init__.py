"""Weakly supervised segmentation pieces: dense backbones, CAMs, PSA's AffinityNet and random
walk, the dense CRF. One module per idea; the tasks (reprolab.tasks.segmentation) compose them."""
