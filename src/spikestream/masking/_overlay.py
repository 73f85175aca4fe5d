"""A region mask drawn over the frame it gated, for the HTML report."""

from __future__ import annotations

import cv2
import numpy as np

from spikestream.masking._regions import RegionGrid

HELD_TINT = np.array([40, 60, 150], np.float32)  # RGB blended into held regions
HELD_BLEND = 0.55  # share of the tint in a held pixel
KEPT_EDGE = (255, 200, 0)  # RGB outline of the regions that pass


def mask_overlay(frame: np.ndarray, regions: np.ndarray, grid: RegionGrid, scale: int = 4,
                 boxes: np.ndarray | None = None) -> np.ndarray:
    """RGB uint8 (H·scale, W·scale): the gray frame, held regions darkened and tinted blue, the regions
    that pass outlined in amber, and ``boxes`` (x0, y0, x1, y1 in frame pixels) in green."""
    gray = np.asarray(frame)
    if gray.ndim == 3:  # (C, H, W) or (H, W, C): shown as the channels' mean
        gray = gray.mean(axis=0 if gray.shape[-1] != grid.width else -1)
    if gray.dtype != np.uint8:
        gray = np.clip(np.asarray(gray, np.float32) * 255 + 0.5, 0, 255).astype(np.uint8)
    gray = cv2.resize(gray, (grid.width * scale, grid.height * scale), interpolation=cv2.INTER_NEAREST)
    rgb = np.repeat(gray[..., None], 3, axis=2).astype(np.float32)  # (H·s, W·s, 3)
    held = ~np.kron(grid.to_pixels(regions), np.ones((scale, scale), bool))
    rgb[held] = (1 - HELD_BLEND) * rgb[held] * 0.6 + HELD_BLEND * HELD_TINT
    image = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    size = grid.size * scale
    for row, column in zip(*np.nonzero(regions), strict=True):
        top, left = row * size, column * size
        bottom, right = min(top + size, grid.height * scale) - 1, min(left + size, grid.width * scale) - 1
        cv2.rectangle(image, (int(left), int(top)), (int(right), int(bottom)), KEPT_EDGE, 1)
    for x0, y0, x1, y1 in ([] if boxes is None else np.asarray(boxes).reshape(-1, 4)):
        cv2.rectangle(image, (int(x0 * scale), int(y0 * scale)), (int(x1 * scale) - 1, int(y1 * scale) - 1),
                      (0, 230, 0), 2)
    return image
