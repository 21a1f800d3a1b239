//! A chunked dataset's data, whole: its chunks found through the index ([`super::chunks`]),
//! each undone by the filters ([`super::filters`]) and copied into the C-order array, clipped
//! where edge chunks pass the dataset's extent; chunks never written hold the fill value.

use super::chunks::{Chunk, Grid};
use super::{filters, Dataset, Element, Hdf5Error, Layout, Reader, Result};

/// The bytes of the chunked dataset `d` of the file `data`, C-order, in the file's byte order.
///
/// `budget` is what the caller still allows in decompressed bytes; it is charged with the
/// array's size before anything is allocated, and with whatever the chunks decode to beyond it
/// (edge chunks reaching far past the extent): the bytes held and the bytes inflated are thus
/// both bounded by it.
pub fn read_chunked(data: &[u8], d: &Dataset, budget: &mut u64) -> Result<Vec<u8>> {
    let Layout::Chunked(layout) = &d.layout else {
        return Err(Hdf5Error::Invalid(format!("{}: not chunked", d.path)));
    };
    let elem = match d.element {
        Element::Float { size, .. } | Element::Int { size, .. } | Element::Other { size } => {
            size as u64
        }
    };
    if elem == 0 || layout.element_size != elem {
        return Err(Hdf5Error::Invalid(format!(
            "{}: chunks of {}-byte elements for a {elem}-byte type",
            d.path, layout.element_size
        )));
    }
    if let Some(f) = d.filters.iter().find(|f| !f.supported()) {
        return Err(Hdf5Error::Unsupported(format!(
            "compressed with the {} filter",
            f.describe()
        )));
    }
    let fill = fill_pattern(d, elem)?;
    let total = d
        .elements()
        .and_then(|n| n.checked_mul(elem))
        .ok_or_else(|| Hdf5Error::Invalid(format!("{}: size overflows", d.path)))?;
    let mut charge = |n: u64| -> Result<()> {
        *budget = budget.checked_sub(n).ok_or_else(|| {
            Hdf5Error::Limit(format!(
                "{}: its chunks would decompress past what is left of the extraction's budget of \
                 decompressed bytes (--max-ratio, config key max_ratio, raises it)",
                d.path
            ))
        })?;
        Ok(())
    };
    charge(total)?;
    let grid = Grid::new(&d.shape, &d.max_shape, layout)?;
    if total == 0 {
        return Ok(Vec::new());
    }
    let r = Reader::open(data)?;
    let chunks = r.chunks(layout, &grid, !d.filters.is_empty())?;
    let total = usize::try_from(total)
        .map_err(|_| Hdf5Error::Limit(format!("{}: larger than memory", d.path)))?;
    let mut out = vec![0u8; total];
    let everywhere = grid.total(&grid.count).unwrap_or(0);
    if let Some(p) = fill.filter(|_| (chunks.len() as u64) < everywhere) {
        for e in out.chunks_exact_mut(p.len()) {
            e.copy_from_slice(p);
        }
    }
    let chunk_bytes = grid.chunk_bytes as usize; // at most u32::MAX (Grid::new)
    let mut decoded = 0u64;
    for ch in &chunks {
        decoded = decoded.saturating_add(grid.chunk_bytes);
        if decoded > total as u64 {
            charge(grid.chunk_bytes)?;
        }
        let stored = r.at(ch.addr, ch.size, "chunk")?;
        let stored = &stored.data[stored.pos..stored.end];
        let partial = ch
            .scaled
            .iter()
            .zip(&grid.chunk)
            .zip(&grid.dims)
            .any(|((&s, &c), &n)| (s + 1).saturating_mul(c) > n);
        let mask = if layout.unfiltered_edges && partial {
            u32::MAX
        } else {
            ch.mask
        };
        let bytes =
            filters::decode(&d.filters, mask, stored, chunk_bytes, elem as usize).map_err(|e| {
                match e {
                    Hdf5Error::Invalid(m) => Hdf5Error::Invalid(format!(
                        "{}: chunk {:?} at {}: {m}",
                        d.path, ch.scaled, ch.addr
                    )),
                    e => e,
                }
            })?;
        place(&mut out, &bytes, ch, &grid, elem as usize).ok_or_else(|| {
            Hdf5Error::Invalid(format!("{}: chunk {:?} misplaced", d.path, ch.scaled))
        })?;
    }
    Ok(out)
}

/// The fill value's bytes when they are not all zero (the array starts zeroed).
fn fill_pattern(d: &Dataset, elem: u64) -> Result<Option<&[u8]>> {
    match d.fill.as_deref() {
        Some(v) if v.iter().any(|&b| b != 0) => {
            if v.len() as u64 != elem {
                return Err(Hdf5Error::Unsupported(format!(
                    "a fill value of {} bytes for {elem}-byte elements",
                    v.len()
                )));
            }
            Ok(Some(v))
        }
        _ => Ok(None),
    }
}

/// Copy one decoded chunk into the array, row by row (a row: the chunk's run along the last
/// dimension), clipped to the dataset's extent. None: a range fell outside (never, for chunks
/// checked against the grid).
fn place(out: &mut [u8], chunk: &[u8], ch: &Chunk, grid: &Grid, elem: usize) -> Option<()> {
    let rank = grid.dims.len();
    let origin: Vec<usize> = ch
        .scaled
        .iter()
        .zip(&grid.chunk)
        .map(|(&s, &c)| usize::try_from(s.checked_mul(c)?).ok())
        .collect::<Option<_>>()?;
    let dims: Vec<usize> = grid
        .dims
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<_>>()?;
    let cdims: Vec<usize> = grid
        .chunk
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<_>>()?;
    let extent: Vec<usize> = (0..rank)
        .map(|k| Some(cdims[k].min(dims[k].checked_sub(origin[k])?)))
        .collect::<Option<_>>()?;
    // Strides in elements: of the array and of the chunk.
    let mut ds = vec![1usize; rank];
    let mut cs = vec![1usize; rank];
    for k in (0..rank.saturating_sub(1)).rev() {
        ds[k] = ds[k + 1].checked_mul(dims[k + 1])?;
        cs[k] = cs[k + 1].checked_mul(cdims[k + 1])?;
    }
    let row = extent[rank - 1].checked_mul(elem)?;
    let mut idx = vec![0usize; rank.saturating_sub(1)];
    if extent.contains(&0) {
        return Some(());
    }
    loop {
        let mut dst = origin[rank - 1];
        let mut src = 0usize;
        for (k, &i) in idx.iter().enumerate() {
            dst = dst.checked_add(origin[k].checked_add(i)?.checked_mul(ds[k])?)?;
            src = src.checked_add(i.checked_mul(cs[k])?)?;
        }
        let (dst, src) = (dst.checked_mul(elem)?, src.checked_mul(elem)?);
        out.get_mut(dst..dst.checked_add(row)?)?
            .copy_from_slice(chunk.get(src..src.checked_add(row)?)?);
        // Next row: the odometer over every dimension but the last.
        let mut k = idx.len();
        loop {
            if k == 0 {
                return Some(());
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < extent[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}
