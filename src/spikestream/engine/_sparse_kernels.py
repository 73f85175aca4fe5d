"""Numba kernels of the sparse backend: each updates the rows of a few pixels of a channels-last map.

A map ``(1, C, H, W)`` in channels-last memory is the row matrix ``rows = (H·W, C)``: row ``p`` holds
every channel of pixel ``p = y·W + x``. A kernel reads the positions that changed in its inputs,
updates the affected rows of its output in place, writes the output positions that changed into
``dirty`` and returns how many it wrote. Positions are int64, values float32, all arrays C-contiguous.

Outputs touched from several inputs are deduplicated with ``stamp``, an int64 array over the output
grid: ``stamp[q] == epoch`` marks q as already listed this step, so nothing has to be cleared.
The four lines that mark and list a position are written out in each kernel: as an inlined helper
they made conv_scatter 2.2x slower (measured), LLVM no longer vectorising the loop around them.
The arithmetic is the dense backend's, element by element, so results match it to float rounding
(bit for bit where no sum is reordered).

Inner loops index 1-D views (``row = out[q]``, ``taps[tap:tap + C]``) with their own loop counter:
numba wraps negative indices around, so an index it cannot prove non-negative (``tap + o``) costs a
test per element and keeps LLVM from vectorising the loop (measured: a bilinear pass 10x slower).
Inner loops also avoid branching on data: which values of a row are zero, or cross θ, follows no
pattern, and a mispredicted branch per value cost more than the arithmetic it would skip (measured:
a pointwise scatter spent 20 ns per event row of 8 values). They select with comparisons instead
(adding a zero where nothing is sent, which leaves every value unchanged), or first gather a row's
non-zero channels into a short list.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_kernel = njit(cache=True, nogil=True)


@njit(cache=True, nogil=True, inline="always")
def _ascending(stamp, epoch, count, dirty):
    """Put the ``count`` positions marked ``epoch`` in ``dirty`` in ascending order, in place.

    Why: the next kernels visit the rows of these positions in several maps of a few MB each;
    in ascending order those visits stream through memory (the prefetcher follows them), in the
    order a scatter touched them they miss the cache (measured: the seg-motion decoder's
    Add-ReLU-SigmaDelta chain ran 1.6x faster on sorted positions). Many marks: one scan of the
    stamps (linear, vectorised); few: a sort."""
    if count > stamp.shape[0] // 32:
        found = 0
        for q in range(stamp.shape[0]):
            if stamp[q] == epoch:
                dirty[found] = q
                found += 1
    else:
        dirty[:count].sort()


@_kernel
def sigma_delta_rows(source, positions, reconstruction, threshold, gate, event_positions, event_values):
    """Send-on-delta at ``positions``: Δ = a − â; y = Δ where |Δ| ≥ θ (times the gate); â ← â + y.

    source, reconstruction (P, C); threshold (1, C) or (P, C); gate (P,) with 1 = send, 0 = hold,
    or empty for none. Writes the rows that send anything to ``event_positions`` (n,) and
    ``event_values`` (n, C), zeros included; returns n and the number of non-zero values.
    """
    channels = reconstruction.shape[1]
    per_pixel = threshold.shape[0] > 1
    gated = gate.shape[0] > 0
    rows = 0
    values = 0
    for i in range(positions.shape[0]):
        p = positions[i]
        t = p if per_pixel else 0
        sends = False
        for c in range(channels):  # most pixels send nothing: test before writing
            sends |= abs(source[p, c] - reconstruction[p, c]) >= threshold[t, c]
        if not sends or (gated and gate[p] == 0):
            continue  # a held pixel keeps its residual a − â until its region is unmasked
        for c in range(channels):
            delta = source[p, c] - reconstruction[p, c]
            y = (delta * gate[p] if gated else delta) if abs(delta) >= threshold[t, c] else np.float32(0.0)
            reconstruction[p, c] += y
            values += y != 0
            event_values[rows, c] = y
        event_positions[rows] = p
        rows += 1
    return rows, values


@_kernel
def sigma_delta_planes(source, reconstruction, threshold, gate, sends, event_positions, event_values):
    """Send-on-delta over every pixel of planar (C, P) maps, for a node fed by the dense input.

    The same rule as ``sigma_delta_rows``; threshold (C, 1) or (C, P). A first pass over whole
    planes (contiguous, vectorised) marks the pixels that send in ``sends`` (P rounded up to 8,
    bool); the second skips eight quiet pixels per word read and writes the events of the others.
    Returns the number of event rows and of non-zero values.
    """
    channels, pixels = reconstruction.shape
    per_pixel = threshold.shape[1] > 1
    gated = gate.shape[0] > 0
    sends[:] = False
    for c in range(channels):
        if per_pixel:
            for p in range(pixels):
                sends[p] |= abs(source[c, p] - reconstruction[c, p]) >= threshold[c, p]
        else:
            theta = threshold[c, 0]
            for p in range(pixels):
                sends[p] |= abs(source[c, p] - reconstruction[c, p]) >= theta
    rows = 0
    values = 0
    words = sends.view(np.uint64)
    for w in range(words.shape[0]):
        if words[w] == 0:
            continue
        for p in range(8 * w, 8 * w + 8):
            if not sends[p] or (gated and gate[p] == 0):
                continue  # a held pixel keeps its residual a − â until its region is unmasked
            for c in range(channels):
                delta = source[c, p] - reconstruction[c, p]
                y = (delta * gate[p] if gated else delta) if abs(delta) >= threshold[c, p if per_pixel else 0] \
                    else np.float32(0.0)
                reconstruction[c, p] += y
                values += y != 0
                event_values[rows, c] = y
            event_positions[rows] = p
            rows += 1
    return rows, values


@_kernel
def sigma_delta_blocks(source, positions, source_width, block_y, block_x, reconstruction, threshold, event_positions,
                       event_values):
    """Send-on-delta of a nearest-upsampled map, computed once per source pixel.

    Every pixel of a block_y × block_x block copies the same source pixel and starts from the same
    reconstruction, so the whole block always sends the same events: compare once (against the
    block's first pixel), add y to every pixel of the block. source (P_source, C) at ``positions``;
    reconstruction (P, C) on the upsampled grid; threshold (1, C). Writes event rows at source
    positions (one row per block); returns the number of rows and of non-zero values per block.
    """
    channels = reconstruction.shape[1]
    width = source_width * block_x
    rows = 0
    values = 0
    for i in range(positions.shape[0]):
        p = positions[i]
        corner = p // source_width * block_y * width + p % source_width * block_x
        sends = False
        for c in range(channels):
            sends |= abs(source[p, c] - reconstruction[corner, c]) >= threshold[0, c]
        if not sends:
            continue
        for c in range(channels):
            delta = source[p, c] - reconstruction[corner, c]
            y = delta if abs(delta) >= threshold[0, c] else np.float32(0.0)
            values += y != 0
            event_values[rows, c] = y
        for dy in range(block_y):
            for dx in range(block_x):
                q = corner + dy * width + dx
                for c in range(channels):
                    reconstruction[q, c] += event_values[rows, c]
        event_positions[rows] = p
        rows += 1
    return rows, values


@_kernel
def conv_scatter(event_positions, event_values, in_width, weight, row_targets, column_targets, out, out_width, stamp,
                 epoch, dirty):
    """Accumulate W·y into a convolution's output for input event rows y (per-pixel scatter).

    weight (C_in, taps_y·taps_x·C_out): each event row first meets every tap in one pass over the
    weight (a short vectorised product that skips zero values), then each tap's C_out sums are
    added to the output pixel it reaches. row_targets[y, t] (H_in, taps_y) is the output row that
    input row y reaches through tap row t, or −1 (stride, padding and dilation are in these
    tables), likewise column_targets (W_in, taps_x).
    """
    in_channels = weight.shape[0]
    out_channels = out.shape[1]
    taps_y = row_targets.shape[1]
    taps_x = column_targets.shape[1]
    taps = np.empty(weight.shape[1], np.float32)  # (taps_y·taps_x·C_out) products of one event row
    sent = np.empty(in_channels, np.int64)  # the row's non-zero channels
    count = 0
    for i in range(event_positions.shape[0]):
        nonzero = 0
        for c in range(in_channels):
            sent[nonzero] = c
            nonzero += event_values[i, c] != 0
        taps[:] = 0
        for k in range(nonzero):
            c = sent[k]
            value = event_values[i, c]
            weights = weight[c]
            for j in range(taps.shape[0]):
                taps[j] += value * weights[j]
        y = event_positions[i] // in_width
        x = event_positions[i] % in_width
        for ty in range(taps_y):
            oy = row_targets[y, ty]
            if oy < 0:
                continue
            for tx in range(taps_x):
                ox = column_targets[x, tx]
                if ox < 0:
                    continue
                q = oy * out_width + ox
                if stamp[q] != epoch:
                    stamp[q] = epoch
                    dirty[count] = q
                    count += 1
                tap = (ty * taps_x + tx) * out_channels
                target, products = out[q], taps[tap:tap + out_channels]
                for o in range(out_channels):
                    target[o] += products[o]
    _ascending(stamp, epoch, count, dirty)
    return count


@_kernel
def pointwise_scatter(event_positions, event_values, weight, out):
    """Accumulate W·y for a 1x1, stride-1, unpadded convolution: each event row reaches only its own
    pixel, so no tables and no deduplication (the event positions are the dirty set). weight (C_in, C_out)."""
    for i in range(event_positions.shape[0]):
        p = event_positions[i]
        for o in range(weight.shape[1]):
            # summed in a register: `out[p, o] +=` per input channel would chain every addition through
            # a store and a load of the same address (measured 4x slower)
            total = out[p, o]
            for c in range(weight.shape[0]):
                total += event_values[i, c] * weight[c, o]  # zeros included: cheaper than branching on them
            out[p, o] = total


@_kernel
def elementwise_rows(sources, positions, rectify, relu_out, reconstruction, threshold, dirty, event_values):
    """A chain Add → ReLU → SigmaDelta (any two or three of them, in that order) in one pass over the
    rows at ``positions``.

    v = Σ sources (Add; a single source passes through); v = max(v, 0) when ``rectify`` (ReLU);
    send-on-delta of v against ``reconstruction`` with θ rows (1 or P, C) when that is not empty
    (SigmaDelta). Only the chain's last stage is stored: the others are read by nobody but the
    next stage, and storing them cost a third of the kernel's memory traffic. ``relu_out`` (empty
    unless the chain ends in ReLU) receives v. Lists in ``dirty`` the event rows (with their values in
    ``event_values``) when the chain ends in a SigmaDelta, else the rows whose ReLU output changed;
    returns that count and the number of non-zero event values.
    """
    stores = relu_out.shape[0] > 0
    sends = reconstruction.shape[0] > 0
    per_pixel = threshold.shape[0] > 1
    count = 0
    nonzero = 0
    for i in range(positions.shape[0]):
        p = positions[i]
        t = p if per_pixel else 0
        marked = False
        for c in range(sources[0].shape[1]):
            value = sources[0][p, c]
            for k in range(1, len(sources)):
                value = value + sources[k][p, c]
            if rectify:
                value = max(value, np.float32(0.0))
            if stores:
                marked |= value != relu_out[p, c]
                relu_out[p, c] = value
            if sends:
                delta = value - reconstruction[p, c]
                y = delta if abs(delta) >= threshold[t, c] else np.float32(0.0)
                reconstruction[p, c] += y
                nonzero += y != 0
                marked |= y != 0
                event_values[count, c] = y
        if marked:
            dirty[count] = p
            count += 1
    return count, nonzero


@_kernel
def relu_rows(source, positions, out, dirty):
    """out = max(source, 0) at ``positions``; lists the rows whose value changed."""
    count = 0
    for i in range(positions.shape[0]):
        p = positions[i]
        changed = False
        for c in range(out.shape[1]):
            value = max(source[p, c], np.float32(0.0))
            changed |= value != out[p, c]
            out[p, c] = value
        if changed:
            dirty[count] = p
            count += 1
    return count


@_kernel
def union_positions(position_sets, stamp, epoch, union):
    """The distinct positions of several sets, in ascending order; returns how many."""
    count = 0
    for positions in position_sets:
        for i in range(positions.shape[0]):
            p = positions[i]
            if stamp[p] != epoch:
                stamp[p] = epoch
                union[count] = p
                count += 1
    _ascending(stamp, epoch, count, union)
    return count


@_kernel
def add_rows(sources, positions, out, dirty):
    """out = Σ sources at ``positions`` (summed left to right, as the dense op); lists changed rows."""
    count = 0
    for i in range(positions.shape[0]):
        p = positions[i]
        changed = False
        for c in range(out.shape[1]):
            total = sources[0][p, c]
            for k in range(1, len(sources)):
                total = total + sources[k][p, c]
            if total != out[p, c]:
                out[p, c] = total
                changed = True
        if changed:
            dirty[count] = p
            count += 1
    return count


@_kernel
def concat_rows(sources, positions, out, dirty):
    """out = channel concatenation of the sources at ``positions``; lists changed rows."""
    count = 0
    for i in range(positions.shape[0]):
        p = positions[i]
        changed = False
        offset = 0
        for source in sources:
            for c in range(source.shape[1]):
                if source[p, c] != out[p, offset + c]:
                    out[p, offset + c] = source[p, c]
                    changed = True
            offset += source.shape[1]
        if changed:
            dirty[count] = p
            count += 1
    return count


@_kernel
def upsample_nearest_rows(source, positions, in_width, factor_y, factor_x, out, dirty):
    """Copy each changed pixel to its factor_y × factor_x children; returns how many children.

    Positions in ascending order give children in ascending order: the changed pixels of one
    source row are copied to the first output row of their blocks, then to the next, and so on."""
    out_width = in_width * factor_x
    count = 0
    start = 0
    while start < positions.shape[0]:
        py = positions[start] // in_width
        end = start + 1
        while end < positions.shape[0] and positions[end] // in_width == py:
            end += 1
        for dy in range(factor_y):
            for i in range(start, end):
                p = positions[i]
                px = p % in_width
                for dx in range(factor_x):
                    q = (py * factor_y + dy) * out_width + px * factor_x + dx
                    for c in range(out.shape[1]):
                        out[q, c] = source[p, c]
                    dirty[count] = q
                    count += 1
        start = end
    return count


@_kernel
def bilinear_rows(source, positions, in_width, row_taps, row_weights, column_taps, column_weights, row_reach,
                  column_reach, out, out_width, stamp, epoch, dirty):
    """Recompute the bilinear upsampling at every output pixel that reads a changed input pixel.

    Output row o reads input rows row_taps[o] = (i0, i1) with weights row_weights[o] = (λ0, λ1), as
    PyTorch's ``align_corners=False``; input row i is read by output rows row_reach[i, 0] to
    row_reach[i, 1] − 1; likewise for columns. Returns the number of output pixels recomputed.
    """
    count = 0
    for i in range(positions.shape[0]):
        y = positions[i] // in_width
        x = positions[i] % in_width
        for oy in range(row_reach[y, 0], row_reach[y, 1]):
            for ox in range(column_reach[x, 0], column_reach[x, 1]):
                q = oy * out_width + ox
                if stamp[q] != epoch:
                    stamp[q] = epoch
                    dirty[count] = q
                    count += 1
    _ascending(stamp, epoch, count, dirty)
    for i in range(count):
        _bilinear_pixel(source, in_width, row_taps, row_weights, column_taps, column_weights, out,
                        dirty[i] // out_width, dirty[i] % out_width, dirty[i])
    return count


@_kernel
def bilinear_all(source, in_width, row_taps, row_weights, column_taps, column_weights, across, out):
    """The bilinear upsampling at every output pixel (see ``bilinear_rows``), in place, in two passes:
    along rows into ``across`` (H_in·W_out, C), then along columns over whole contiguous output rows.
    The same products and sums as ``bilinear_rows``, in the same order."""
    out_width = column_taps.shape[0]
    channels = out.shape[1]
    flat_source = source.reshape(-1)
    for y in range(source.shape[0] // in_width):  # a gather: computed indices are unavoidable here
        row_in = flat_source[y * in_width * channels:(y + 1) * in_width * channels]
        row_across = across[y * out_width:(y + 1) * out_width].reshape(-1)
        if channels == 1:  # a logit map (a segmentation head): no channel loop around a one-element body
            for ox in range(out_width):
                row_across[ox] = column_weights[ox, 0] * row_in[column_taps[ox, 0]] \
                    + column_weights[ox, 1] * row_in[column_taps[ox, 1]]
            continue
        for ox in range(out_width):
            first, second = column_taps[ox, 0] * channels, column_taps[ox, 1] * channels
            w0, w1 = column_weights[ox, 0], column_weights[ox, 1]
            for c in range(channels):
                row_across[ox * channels + c] = w0 * row_in[first + c] + w1 * row_in[second + c]
    row = out_width * channels
    flat_across, flat_out = across.reshape(-1), out.reshape(-1)
    for oy in range(row_taps.shape[0]):
        top, bottom = row_taps[oy, 0] * row, row_taps[oy, 1] * row
        h0, h1 = row_weights[oy, 0], row_weights[oy, 1]
        upper, lower = flat_across[top:top + row], flat_across[bottom:bottom + row]
        target = flat_out[oy * row:(oy + 1) * row]
        for j in range(row):
            target[j] = h0 * upper[j] + h1 * lower[j]


@njit(cache=True, nogil=True, inline="always")
def _bilinear_pixel(source, in_width, row_taps, row_weights, column_taps, column_weights, out, oy, ox, q):
    top, bottom = row_taps[oy, 0] * in_width, row_taps[oy, 1] * in_width
    left, right = column_taps[ox, 0], column_taps[ox, 1]
    h0, h1 = row_weights[oy, 0], row_weights[oy, 1]
    w0, w1 = column_weights[ox, 0], column_weights[ox, 1]
    for c in range(out.shape[1]):
        out[q, c] = h0 * (w0 * source[top + left, c] + w1 * source[top + right, c]) \
            + h1 * (w0 * source[bottom + left, c] + w1 * source[bottom + right, c])


@_kernel
def pool_rows(source, positions, in_width, kernel_y, kernel_x, mode, out, out_height, out_width, stamp, epoch,
              dirty):
    """Recompute the non-overlapping pooling windows (stride = kernel, no padding) that hold a changed
    pixel; mode 0: max, 1: mean, 2: sum. Returns the number of windows."""
    count = 0
    for i in range(positions.shape[0]):
        oy = positions[i] // in_width // kernel_y
        ox = positions[i] % in_width // kernel_x
        if oy < out_height and ox < out_width:
            q = oy * out_width + ox
            if stamp[q] != epoch:
                stamp[q] = epoch
                dirty[count] = q
                count += 1
    _ascending(stamp, epoch, count, dirty)
    window = kernel_y * kernel_x
    for i in range(count):
        q = dirty[i]
        top, left = q // out_width * kernel_y, q % out_width * kernel_x
        for c in range(out.shape[1]):
            result = source[top * in_width + left, c]
            for dy in range(kernel_y):
                for dx in range(kernel_x):
                    if dy == 0 and dx == 0:
                        continue
                    value = source[(top + dy) * in_width + left + dx, c]
                    result = max(result, value) if mode == 0 else result + value
            out[q, c] = result / window if mode == 1 else result
    return count


@_kernel
def count_event_rows(positions, values, block_pixels, fanout, input_channel_work):
    """Events (non-zero values) and synops (Σ fan-out of each event) of a sparse wire; adds each
    input channel's synops to ``input_channel_work`` (C,) int64, unless it is empty (not wanted). A
    row at ``positions[i]`` stands for ``block_pixels`` pixels that all send ``values[i]``; fanout
    (rows' grid, C) int32 holds the summed fan-out of those pixels per channel, or (rows' grid, 1)
    when it is the same for every channel."""
    events = 0
    synops = 0
    per_channel = fanout.shape[1] > 1
    if not per_channel and input_channel_work.shape[0] == 0:  # count a row's values, then multiply once
        for i in range(positions.shape[0]):
            row = values[i]
            sent = 0
            for c in range(row.shape[0]):
                sent += row[c] != 0
            events += sent
            synops += sent * fanout[positions[i], 0]
        return events * block_pixels, synops
    for i in range(positions.shape[0]):
        p = positions[i]
        for c in range(values.shape[1]):
            reach = fanout[p, c if per_channel else 0] * (values[i, c] != 0)
            events += block_pixels * (values[i, c] != 0)
            synops += reach
            input_channel_work[c] += reach
    return events, synops


@_kernel
def finite_values(values):
    """Whether every value of a 1-D float array is finite, in one pass (NaN < inf is false)."""
    finite = True
    for i in range(values.shape[0]):
        finite &= abs(values[i]) < np.inf  # no early exit: an and-reduction vectorises
    return finite
