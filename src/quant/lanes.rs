//! The K-quant sub-block searches (`make_qkx2_quants`, `make_qx_quants` with `rmse_type == 1`)
//! run for eight sub-blocks at once, one sub-block per lane.
//!
//! The searches are chains of dependent float sums: one sub-block at a time, the processor waits
//! on each addition. Lane `k` here performs exactly the operations, in exactly the order, that the
//! one-sub-block search performs on sub-block `k` (branches become per-lane selections), so the
//! results are bit-identical while eight chains advance together; the loops over lanes are plain
//! element-wise loops the compiler turns into vector instructions, with no reassociation and no
//! `unsafe`. `kquants::tests` checks the lane versions against the one-sub-block versions.

/// Sub-blocks searched together.
pub const LANES: usize = 8;

type F = [f32; LANES];

/// ggml's `nearest_int` (see `kquants::nearest_int`).
#[inline(always)]
fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// `make_qkx2_quants` for the `N`-value sub-blocks in the lanes of `x` (`x[i][k]` is value `i`
/// of sub-block `k`) with weights `w`. Writes `l_out` and returns `(scale, -min)` per lane.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn qkx2<const N: usize>(
    nmax: i32,
    x: &[F; N],
    w: &[F; N],
    l_out: &mut [[u8; LANES]; N],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (F, F) {
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = w[0];
    let mut sum_x = [0f32; LANES];
    for k in 0..LANES {
        sum_x[k] = sum_w[k] * x[0][k];
    }
    for i in 1..N {
        for k in 0..LANES {
            let v = x[i][k];
            min[k] = if v < min[k] { v } else { min[k] };
            max[k] = if v > max[k] { v } else { max[k] };
            sum_w[k] += w[i][k];
            sum_x[k] += w[i][k] * v;
        }
    }
    let nmaxf = nmax as f32;
    let mut flat = [false; LANES];
    let mut iscale = [0f32; LANES];
    let mut scale = [0f32; LANES];
    for k in 0..LANES {
        if min[k] > 0.0 {
            min[k] = 0.0;
        }
        flat[k] = max[k] == min[k];
        iscale[k] = nmaxf / (max[k] - min[k]);
        scale[k] = 1.0 / iscale[k];
    }
    let mut best_error = [0f32; LANES];
    for i in 0..N {
        for k in 0..LANES {
            let l = nearest_int(iscale[k] * (x[i][k] - min[k])).clamp(0, nmax);
            l_out[i][k] = l as u8;
            let diff = scale[k] * l as f32 + min[k] - x[i][k];
            let diff = if use_mad { diff.abs() } else { diff * diff };
            best_error[k] += w[i][k] * diff;
        }
    }
    if nstep >= 1 {
        // `x - min`, computed again only when a lane's minimum changes, and the levels kept as
        // floats: the same operations the one-sub-block search performs at each step, so the
        // same values.
        let mut xm = [[0f32; LANES]; N];
        for i in 0..N {
            for k in 0..LANES {
                xm[i][k] = x[i][k] - min[k];
            }
        }
        let mut aux = [[0f32; LANES]; N];
        for is in 0..=nstep {
            let mut sum_l = [0f32; LANES];
            let mut sum_l2 = [0f32; LANES];
            let mut sum_xl = [0f32; LANES];
            for k in 0..LANES {
                iscale[k] = (rmin + rdelta * is as f32 + nmaxf) / (max[k] - min[k]);
            }
            for i in 0..N {
                for k in 0..LANES {
                    let l = nearest_int(iscale[k] * xm[i][k]).clamp(0, nmax);
                    let lf = l as f32;
                    aux[i][k] = lf;
                    sum_l[k] += w[i][k] * lf;
                    sum_l2[k] += w[i][k] * lf * lf;
                    sum_xl[k] += w[i][k] * lf * x[i][k];
                }
            }
            let mut ok = [false; LANES];
            let mut this_scale = [0f32; LANES];
            let mut this_min = [0f32; LANES];
            for k in 0..LANES {
                let d = sum_w[k] * sum_l2[k] - sum_l[k] * sum_l[k];
                ok[k] = d > 0.0;
                this_scale[k] = (sum_w[k] * sum_xl[k] - sum_x[k] * sum_l[k]) / d;
                this_min[k] = (sum_l2[k] * sum_x[k] - sum_l[k] * sum_xl[k]) / d;
                if this_min[k] > 0.0 {
                    this_min[k] = 0.0;
                    this_scale[k] = sum_xl[k] / sum_l2[k];
                }
            }
            let mut cur_error = [0f32; LANES];
            for i in 0..N {
                for k in 0..LANES {
                    let diff = this_scale[k] * aux[i][k] + this_min[k] - x[i][k];
                    let diff = if use_mad { diff.abs() } else { diff * diff };
                    cur_error[k] += w[i][k] * diff;
                }
            }
            let mut take = [false; LANES];
            for k in 0..LANES {
                take[k] = !flat[k] && ok[k] && cur_error[k] < best_error[k];
                if take[k] {
                    best_error[k] = cur_error[k];
                    scale[k] = this_scale[k];
                    min[k] = this_min[k];
                }
            }
            for i in 0..N {
                for k in 0..LANES {
                    if take[k] {
                        l_out[i][k] = aux[i][k] as u8;
                        // The search goes on from the new minimum.
                        xm[i][k] = x[i][k] - min[k];
                    }
                }
            }
        }
    }
    let mut neg_min = [0f32; LANES];
    for k in 0..LANES {
        neg_min[k] = -min[k];
        if flat[k] {
            scale[k] = 0.0;
        }
    }
    for row in l_out.iter_mut() {
        for k in 0..LANES {
            if flat[k] {
                row[k] = 0;
            }
        }
    }
    (scale, neg_min)
}

/// `make_qx_quants` with `rmse_type == 1` and no importance weights, for the `N`-value
/// sub-blocks in the lanes of `x`. Writes `L + nmax` to `l_out`, returns the scale per lane.
#[inline(always)]
pub fn qx_rmse1<const N: usize>(nmax: i32, x: &[F; N], l_out: &mut [[i8; LANES]; N]) -> F {
    let mut max = [0f32; LANES];
    let mut amax = [0f32; LANES];
    for row in x {
        for k in 0..LANES {
            let ax = row[k].abs();
            if ax > amax[k] {
                amax[k] = ax;
                max[k] = row[k];
            }
        }
    }
    let nmaxf = nmax as f32;
    let mut iscale = [0f32; LANES];
    let mut sumlx = [0f32; LANES];
    let mut suml2 = [0f32; LANES];
    for k in 0..LANES {
        iscale[k] = -nmaxf / max[k];
    }
    for i in 0..N {
        for k in 0..LANES {
            let v = x[i][k];
            let l = nearest_int(iscale[k] * v).clamp(-nmax, nmax - 1);
            l_out[i][k] = (l + nmax) as i8;
            let w = v * v;
            let lf = l as f32;
            sumlx[k] += w * v * lf;
            suml2[k] += w * lf * lf;
        }
    }
    let mut scale = [0f32; LANES];
    let mut best = [0f32; LANES];
    for k in 0..LANES {
        scale[k] = if suml2[k] != 0.0 {
            sumlx[k] / suml2[k]
        } else {
            0.0
        };
        best[k] = scale[k] * sumlx[k];
    }
    let mut aux = [[0i8; LANES]; N];
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        for k in 0..LANES {
            iscale[k] = -(nmaxf + 0.1f32 * is as f32) / max[k];
            sumlx[k] = 0.0;
            suml2[k] = 0.0;
        }
        for i in 0..N {
            for k in 0..LANES {
                let v = x[i][k];
                let l = nearest_int(iscale[k] * v).clamp(-nmax, nmax - 1);
                aux[i][k] = (nmax + l) as i8;
                let w = v * v;
                let lf = l as f32;
                sumlx[k] += w * v * lf;
                suml2[k] += w * lf * lf;
            }
        }
        let mut take = [false; LANES];
        for k in 0..LANES {
            take[k] = suml2[k] > 0.0 && sumlx[k] * sumlx[k] > best[k] * suml2[k];
            if take[k] {
                scale[k] = sumlx[k] / suml2[k];
                best[k] = scale[k] * sumlx[k];
            }
        }
        for i in 0..N {
            for k in 0..LANES {
                if take[k] {
                    l_out[i][k] = aux[i][k];
                }
            }
        }
    }
    // All-zero sub-blocks (below ggml's GROUP_MAX_EPS): L = 0, scale 0.
    for k in 0..LANES {
        if amax[k] < 1e-15 {
            scale[k] = 0.0;
            for row in l_out.iter_mut() {
                row[k] = 0;
            }
        }
    }
    scale
}
