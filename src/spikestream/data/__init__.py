"""Data: synthetic video with ground truth."""

from spikestream.data.synthetic import (
    BACKGROUND_LEVEL,
    SHAPES,
    SyntheticClip,
    TextureProvider,
    lane_row_prior,
    moving_objects_clip,
    shaded_texture,
    shape_mask,
    textured_background,
)

__all__ = [
    "BACKGROUND_LEVEL",
    "SHAPES",
    "SyntheticClip",
    "TextureProvider",
    "lane_row_prior",
    "moving_objects_clip",
    "shaded_texture",
    "shape_mask",
    "textured_background",
]
