//! Compressors for index files. Output is deterministic (no timestamps), so
//! identical indexes produce identical by-hash objects.

use std::io::Write;

/// gzip at the best compression level, with a zero mtime.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(data).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// xz at preset 0. On real `Packages` text (40% hex digests) preset 2 took 1.10 s at
/// 10,000 packages, preset 0 0.23 s for a 5% larger file; clients that want the
/// smallest download fetch `Packages.zst` or `.xz` alike (docs/performance.md).
pub fn xz(data: &[u8]) -> Vec<u8> {
    let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 0);
    enc.write_all(data).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// zstd at level 3 (libzstd's default): apt (>= 1.5) and dnf read it, and it
/// decompresses faster than either of the others. libzstd, not ruzstd's pure-Rust
/// encoder, which took most of a 10,000-package publish (docs/performance.md).
pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(data, 3).expect("compressing a buffer in memory cannot fail")
}
