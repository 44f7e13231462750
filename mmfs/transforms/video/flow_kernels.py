"""Compiled per-pair loops of the flow statistics: flow reduction, camera-motion fit, the sample pass.

Numpy on a batch of flows pays a fixed cost per call, and the statistics of a pair need some forty calls
(medians, masks, weighted sums, re-fits): at DIS's speed that fixed cost was as large as the flow itself.
Here each pair is a few loops over its 144 grid cells and its ~1000 sampled pixels, compiled by numba
(already installed for librosa) on first use and cached on disk (numba's cache, in `__pycache__` or
`NUMBA_CACHE_DIR`), so later processes load the machine code instead of compiling it again.
The arithmetic is the closed form `video.global_motion` documents; docs/motion.md has the conventions.
"""

from __future__ import annotations

import numba
import numpy as np

ORIENT_BINS = 8

# the per-pair scalars `sample_stats` writes, in this order
SAMPLE_COLUMNS = ("mean_mag", "max_mag", "moving_frac", "residual_mean_mag", "residual_moving_frac")


@numba.njit(cache=True, nogil=True, error_model="numpy")
def rank_value(values: np.ndarray, k: int, scratch: np.ndarray, spare: np.ndarray) -> float:
    """The value of rank k (0: the least) of `values`, which keep their order; `scratch` and `spare` are
    work arrays as long, overwritten.

    Quickselect around a median of three, partitioning by copying each value into both a "less" and a
    "greater" array and moving each end by a comparison: no branch depends on the data, which at these
    lengths (144 grid cells) is 4x faster than swapping in place, where every other comparison
    mispredicts. Values equal to the pivot are set aside each round, so ties cannot stall it.
    """
    n = len(values)
    for j in range(n):
        scratch[j] = values[j]
    here, there = scratch, spare
    while n > 8:
        x, y, z = here[0], here[n >> 1], here[n - 1]
        pivot = max(min(x, y), min(max(x, y), z))
        less = greater = 0
        for j in range(n):
            value = here[j]
            there[less] = value  # kept when less than the pivot
            here[greater] = value  # kept when greater (greater <= j: nothing unread is overwritten)
            less += value < pivot
            greater += value > pivot
        if k < less:
            here, there = there, here
            n = less
        elif k < n - greater:
            return pivot
        else:
            k -= n - greater
            n = greater
    for i in range(1, n):  # a few values left: insertion sort
        value = here[i]
        j = i - 1
        while j >= 0 and here[j] > value:
            here[j + 1] = here[j]
            j -= 1
        here[j + 1] = value
    return here[k]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _median(values: np.ndarray, scratch: np.ndarray, spare: np.ndarray) -> float:
    """np.median of a 1-d array (the mean of the two middle values when the length is even)."""
    n = len(values)
    k = (n - 1) // 2
    lower = rank_value(values, k, scratch, spare)
    if n % 2:
        return lower
    at_most, upper = 0, np.inf  # the next rank: lower again if it is tied, else the least value above it
    for value in values:
        at_most += value <= lower
        if value > lower:
            upper = min(upper, value)
    return lower if at_most > k + 1 else lower + (upper - lower) * 0.5


@numba.njit(cache=True, nogil=True, error_model="numpy")
def fit_similarity(
    vectors: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    refits: int,
    spread2: float,
    floor2: float,
    inlier2: float,
    params: np.ndarray,
    inlier_frac: np.ndarray,
) -> None:
    """Fit each pair's camera motion: (n, m, 2) cell vectors at cells (px, py) from the frame centre.

    Writes (a, b, tx, ty) into `params` (n, 4) and the share of cells within sqrt(inlier2) px of the fit
    into `inlier_frac` (n,). The fit starts from the median shift; each of up to `refits` rounds keeps the
    cells within max(floor2, spread2 x the median squared error) and solves f = z p + t by complex least
    squares over them, stopping once the kept cells no longer change (the same cells give the same fit).
    `refits` 0 is the median shift alone.
    """
    n, m = vectors.shape[0], vectors.shape[1]
    middle = m // 2
    u, v, err2, scratch, spare = np.empty(m), np.empty(m), np.empty(m), np.empty(m), np.empty(m)
    kept = np.zeros(m, dtype=np.bool_)
    for i in range(n):
        for j in range(m):
            u[j], v[j] = vectors[i, j, 0], vectors[i, j, 1]
        a, b, tx, ty = 0.0, 0.0, _median(u, scratch, spare), _median(v, scratch, spare)
        kept.fill(False)
        for r in range(refits):
            below = 0  # cells whose error, spread, stays under the floor: enough of them fix the limit
            for j in range(m):
                du = u[j] - (a * px[j] - b * py[j] + tx)
                dv = v[j] - (b * px[j] + a * py[j] + ty)
                err2[j] = du * du + dv * dv
                below += err2[j] * spread2 <= floor2
            if below > middle:  # the median error is under the floor too (no selection needed)
                limit2 = floor2
            else:
                limit2 = max(rank_value(err2, middle, scratch, spare) * spread2, floor2)
            changed = r == 0
            s_w = s_x = s_y = s_r2 = s_u = s_v = s_re = s_im = 0.0
            for j in range(m):  # weights of 0 or 1, not branches: which cells count is unpredictable
                now = err2[j] <= limit2
                changed |= now != kept[j]
                kept[j] = now
                weight = 1.0 if now else 0.0
                x, y, fu, fv = px[j], py[j], u[j], v[j]
                s_w += weight
                s_x += weight * x
                s_y += weight * y
                s_r2 += weight * (x * x + y * y)
                s_u += weight * fu
                s_v += weight * fv
                s_re += weight * (x * fu + y * fv)  # conj(p) f = (x - iy)(u + iv)
                s_im += weight * (x * fv - y * fu)
            if not changed:
                break
            # z = (s_pf - conj(c) s_f) / spread and t = s_f / s_w - z c, with c the kept cells' centroid
            cx, cy = s_x / s_w, s_y / s_w
            spread = s_r2 - (s_x * cx + s_y * cy)  # sum of |p - c|^2
            a = (s_re - (cx * s_u + cy * s_v)) / spread
            b = (s_im - (cx * s_v - cy * s_u)) / spread
            tx = s_u / s_w - (a * cx - b * cy)
            ty = s_v / s_w - (a * cy + b * cx)
        inliers = 0
        for j in range(m):
            du = u[j] - (a * px[j] - b * py[j] + tx)
            dv = v[j] - (b * px[j] + a * py[j] + ty)
            inliers += du * du + dv * dv <= inlier2
        params[i, 0], params[i, 1], params[i, 2], params[i, 3] = a, b, tx, ty
        inlier_frac[i] = inliers / m


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _octant(x: float, y: float) -> int:
    """floor(atan2(y, x) mod 2 pi / 45 degrees) without atan2: bin 2 (90 degrees) points down the image.

    Half turns, then quarter turns, bring the vector into [0, 90) degrees, where one comparison is left;
    written as selects, not branches, since flow directions are unpredictable. The zero vector is bin 0.
    """
    lower = (y < 0.0) | ((y == 0.0) & (x < 0.0))  # [180, 360): turn half a turn
    if lower:
        x, y = -x, -y
    second = (x <= 0.0) & (y > 0.0)  # [90, 180): turn a quarter back
    if second:
        x, y = y, -x
    return 4 * lower + 2 * second + ((y >= x) & (y > 0.0))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def sample_stats(
    sx: np.ndarray,
    sy: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    params: np.ndarray,
    threshold: np.float32,
    mag: np.ndarray,
    hist: np.ndarray,
    scalars: np.ndarray,
) -> None:
    """One pass over each pair's (n, m) sampled flow at pixels (px, py) from the frame centre.

    Writes the float32 magnitudes into `mag` (n, m) (numpy's vectorised sort takes their quantiles
    faster than a selection here), the magnitude-weighted orientation histogram into `hist` (n, 8)
    (summing to 1, or zeros when nothing moves), and SAMPLE_COLUMNS into `scalars` (n, 5): mean and max
    magnitude, share above `threshold`, and the same two of the residual once the camera motion
    `params` (n, 4) is taken away.
    """
    n, m = sx.shape
    counts = np.zeros(ORIENT_BINS)
    octants = np.empty(m, dtype=np.int64)
    for i in range(n):
        a, b, tx, ty = params[i, 0], params[i, 1], params[i, 2], params[i, 3]
        counts.fill(0.0)
        total = peak = resid_total = 0.0
        moving = resid_moving = 0
        for j in range(m):  # alone in its loop the octant compiles to selects; fused below, to branches
            octants[j] = _octant(sx[i, j], sy[i, j])
        for j in range(m):
            x, y = sx[i, j], sy[i, j]
            length = np.sqrt(x * x + y * y)
            mag[i, j] = length
            total += length
            counts[octants[j]] += length
            peak = max(peak, length)
            moving += length > threshold
            rx = x - (a * px[j] - b * py[j] + tx)
            ry = y - (b * px[j] + a * py[j] + ty)
            resid = np.sqrt(rx * rx + ry * ry)
            resid_total += resid
            resid_moving += resid > threshold
        for k in range(ORIENT_BINS):
            hist[i, k] = counts[k] / total if total > 1e-9 else 0.0
        scalars[i, 0] = total / m
        scalars[i, 1] = peak
        scalars[i, 2] = moving / m
        scalars[i, 3] = resid_total / m
        scalars[i, 4] = resid_moving / m


@numba.njit(cache=True, nogil=True, error_model="numpy")
def reduce_flow(
    flow: np.ndarray, step: int, field: np.ndarray, sample_x: np.ndarray, sample_y: np.ndarray
) -> None:
    """What the statistics keep of one (h, w, 2) flow, read while it is still in cache.

    `field` (rows, cols, 2) gets the means of (h / rows) x (w / cols) blocks, which is OpenCV's
    INTER_AREA at a whole-number ratio (the caller checks the sizes divide); `sample_x` / `sample_y`
    get the x and y of every `step`-th pixel both ways. Rows of blocks are summed as whole rows of
    floats first (contiguous adds), then split into blocks.
    """
    h, w = flow.shape[0], flow.shape[1]
    rows, cols = field.shape[0], field.shape[1]
    block_rows, block_cols = h // rows, w // cols
    scale = np.float32(1.0 / (block_rows * block_cols))
    flat = flow.reshape(h, 2 * w)
    sums = np.empty(2 * w, dtype=np.float32)
    for fr in range(rows):
        for j in range(2 * w):
            sums[j] = flat[fr * block_rows, j]
        for r in range(fr * block_rows + 1, (fr + 1) * block_rows):
            for j in range(2 * w):
                sums[j] += flat[r, j]
        for fc in range(cols):
            sum_x = sum_y = np.float32(0.0)
            for c in range(fc * block_cols, (fc + 1) * block_cols):
                sum_x += sums[2 * c]
                sum_y += sums[2 * c + 1]
            field[fr, fc, 0] = sum_x * scale
            field[fr, fc, 1] = sum_y * scale
    for i in range(sample_x.shape[0]):
        for j in range(sample_x.shape[1]):
            sample_x[i, j] = flow[i * step, j * step, 0]
            sample_y[i, j] = flow[i * step, j * step, 1]
