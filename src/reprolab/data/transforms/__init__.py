"""Transforms of decoded samples: video clips (TSN-style multi-scale crops), images, pose crops."""
