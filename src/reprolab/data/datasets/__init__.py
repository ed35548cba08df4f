"""torch Datasets over prepared splits: video clips, images, mined tuples (one module per kind of sample)."""
