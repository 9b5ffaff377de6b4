//! Indexes compressed piece by piece, so that a publication compresses only the
//! pieces that changed.
//!
//! gzip members and zstd frames may be concatenated: apt, dnf (librepo and libsolv)
//! and the usual tools decompress such a file as the concatenation of its parts. apt
//! reads only the first of concatenated xz streams (measured: a hash mismatch), so
//! an `.xz` is one stream of many blocks, one block per piece, with the index and
//! footer written anew each time (xz-file-format 1.2.1; liblzma's multi-threaded
//! encoder writes the same shape). tests/e2e/test_pieces.py checks apt on every
//! encoding of a multi-piece index, test_yum.py dnf on gzip and zstd. An index
//! is cut after the packages whose file name hashes to a boundary ([`ends_piece`]),
//! about one in [`PIECE_SPAN`], so adding or removing a package changes the one piece
//! that holds it and leaves every other piece's text, and so its compressed bytes, as
//! they were. A warm worker keeps each index's pieces ([`Pieces`]) and compresses
//! again only those whose text it has not compressed before.

use bytes::Bytes;
use std::collections::HashMap;

/// About this many packages per piece.
pub(crate) const PIECE_SPAN: u64 = 128;
/// A piece ends after this many packages at most, whatever the names.
const MAX_PIECE_PACKAGES: usize = 4 * PIECE_SPAN as usize;

/// Whether a piece ends after the package stored as `filename`: FNV-1a of the name,
/// so the boundaries are the same in every process and every run.
pub(crate) fn ends_piece(filename: &str) -> bool {
    fnv1a(filename.as_bytes(), 0) % PIECE_SPAN == 0
}

/// FNV-1a (64 bits) of `bytes`, its offset basis mixed with `salt`.
fn fnv1a<'a>(bytes: impl IntoIterator<Item = &'a u8>, salt: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The cores this process may use.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `f` of every item, on up to `threads` threads (item `i` on thread `i % threads`,
/// so large items next to each other are spread), in the items' order.
pub(crate) fn on_threads<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = threads.clamp(1, items.len().max(1));
    let f = &f;
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t..items.len())
                        .step_by(threads)
                        .map(|i| (i, f(&items[i])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a worker thread does not panic"))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// A piece's length and its first and last 64 bytes, FNV-1a: pieces that differ
/// almost always differ there (a changed piece's package count moves its end).
fn fingerprint(text: &[u8]) -> u64 {
    let ends = text.len().min(64);
    fnv1a(
        text[..ends].iter().chain(&text[text.len() - ends..]),
        text.len() as u64,
    )
}

/// A compressed encoding of an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Codec {
    Gzip,
    Xz,
    Zstd,
}

impl Codec {
    fn compress(self, text: &[u8]) -> Member {
        match self {
            Codec::Gzip => Member::whole(cairn_deb::gzip(text)),
            Codec::Zstd => Member::whole(cairn_deb::zstd(text)),
            // The one block of a one-block stream.
            Codec::Xz => {
                let stream = Bytes::from(cairn_deb::xz(text));
                let (_, mut blocks) = xz_blocks(&stream).expect("liblzma writes a valid stream");
                // No block for no text: the piece adds nothing to the stream.
                if blocks.is_empty() {
                    return Member::whole(Vec::new());
                }
                assert_eq!(
                    blocks.len(),
                    1,
                    "liblzma's single-threaded encoder writes one block"
                );
                let (range, unpadded, _) = blocks.remove(0);
                Member {
                    bytes: stream.slice(range),
                    unpadded,
                }
            }
        }
    }

    /// The file whose pieces are `members` (with their texts' lengths).
    fn join(self, members: &[(&Member, u64)]) -> Bytes {
        let mut out =
            Vec::with_capacity(members.iter().map(|(m, _)| m.bytes.len()).sum::<usize>() + 64);
        if self == Codec::Xz {
            out.extend_from_slice(&xz_header());
        }
        for (member, _) in members {
            out.extend_from_slice(&member.bytes);
        }
        if self == Codec::Xz {
            let records: Vec<(u64, u64)> = members
                .iter()
                .filter(|(m, _)| !m.bytes.is_empty())
                .map(|(m, size)| (m.unpadded, *size))
                .collect();
            out.extend_from_slice(&xz_index_and_footer(&records));
        }
        Bytes::from(out)
    }
}

/// A piece compressed: a gzip member, a zstd frame, or an xz block (with its
/// padding and check) and its unpadded size, which the stream's index records.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Member {
    pub(crate) bytes: Bytes,
    pub(crate) unpadded: u64,
}

impl Member {
    fn whole(bytes: Vec<u8>) -> Self {
        Self {
            bytes: Bytes::from(bytes),
            unpadded: 0,
        }
    }
}

/// Collects an index's text into pieces: items are appended with [`Self::push`] and
/// a piece is closed after an item that [`ends_piece`] (or after the cap).
#[derive(Default)]
pub(crate) struct Cutter {
    pieces: Vec<Bytes>,
    current: Vec<u8>,
    items: usize,
}

impl Cutter {
    /// Appends `text`, the item of package `filename`.
    pub(crate) fn push(&mut self, filename: &str, text: &[&str]) {
        for t in text {
            self.current.extend_from_slice(t.as_bytes());
        }
        self.items += 1;
        if ends_piece(filename) || self.items >= MAX_PIECE_PACKAGES {
            self.close();
        }
    }

    /// Appends `text` as a piece of its own (a document's head or tail).
    pub(crate) fn own_piece(&mut self, text: &str) {
        self.close();
        self.current.extend_from_slice(text.as_bytes());
        self.close();
    }

    fn close(&mut self) {
        if !self.current.is_empty() {
            self.pieces
                .push(Bytes::from(std::mem::take(&mut self.current)));
        }
        self.items = 0;
    }

    /// The pieces, at least one (an empty index is one empty piece).
    pub(crate) fn finish(mut self) -> Vec<Bytes> {
        self.close();
        if self.pieces.is_empty() {
            self.pieces.push(Bytes::new());
        }
        self.pieces
    }
}

/// One piece and its compressed forms, in the order of the codecs asked for.
#[derive(Debug, Clone)]
struct Piece {
    text: Bytes,
    packed: Vec<Member>,
}

/// The pieces of every index a warm worker built last, by index (e.g.
/// `main/binary-amd64/Packages`, `x86_64/primary`).
#[derive(Debug, Clone, Default)]
pub struct Pieces {
    by_index: HashMap<String, (Vec<Codec>, Vec<Piece>)>,
    /// Pieces compressed and reused so far, for the publication report.
    pub(crate) compressed: usize,
    pub(crate) reused: usize,
}

/// An index, whole and in each encoding.
pub(crate) struct Packed {
    /// The text.
    pub(crate) text: Bytes,
    /// One body per codec asked for, in that order.
    pub(crate) packed: Vec<Bytes>,
    /// Pieces compressed by this call (the others were reused).
    #[cfg(test)]
    compressed: usize,
}

impl Pieces {
    /// Packs the index `name` from `pieces` in each of `codecs`: the pieces this
    /// worker packed for that index last time are reused, the others compressed
    /// (on `threads` threads), and the set kept for next time.
    pub(crate) fn pack(
        &mut self,
        name: &str,
        pieces: Vec<Bytes>,
        codecs: &[Codec],
        threads: usize,
    ) -> Packed {
        // Looked up by a fingerprint of their ends, then compared whole: hashing
        // every byte took more time than the rest of a warm publication's build.
        let mut known: HashMap<u64, Vec<&Piece>> = HashMap::new();
        if let Some((previous_codecs, previous)) = self.by_index.get(name)
            && previous_codecs == codecs
        {
            for piece in previous {
                known
                    .entry(fingerprint(&piece.text))
                    .or_default()
                    .push(piece);
            }
        }
        let mut built: Vec<Option<Piece>> = pieces
            .iter()
            .map(|text| {
                known
                    .get(&fingerprint(text))?
                    .iter()
                    .find(|p| p.text == text)
                    .map(|p| (*p).clone())
            })
            .collect();
        let missing: Vec<usize> = (0..pieces.len()).filter(|&i| built[i].is_none()).collect();
        let compressed = missing.len();
        self.compressed += compressed;
        self.reused += pieces.len() - compressed;
        let done = on_threads(&missing, threads, |&i| {
            (i, codecs.iter().map(|c| c.compress(&pieces[i])).collect())
        });
        for (i, packed) in done {
            built[i] = Some(Piece {
                text: pieces[i].clone(),
                packed,
            });
        }
        let built: Vec<Piece> = built
            .into_iter()
            .map(|p| p.expect("every piece is reused or compressed"))
            .collect();
        let texts: Vec<&[u8]> = built.iter().map(|p| p.text.as_ref()).collect();
        let text = Bytes::from(texts.concat());
        let packed = codecs
            .iter()
            .enumerate()
            .map(|(c, codec)| {
                let members: Vec<(&Member, u64)> = built
                    .iter()
                    .map(|p| (&p.packed[c], p.text.len() as u64))
                    .collect();
                codec.join(&members)
            })
            .collect();
        self.by_index
            .insert(name.to_string(), (codecs.to_vec(), built));
        Packed {
            text,
            packed,
            #[cfg(test)]
            compressed,
        }
    }
}

impl Pieces {
    /// Bytes held: every piece's text and members.
    pub(crate) fn bytes(&self) -> usize {
        self.by_index
            .values()
            .flat_map(|(_, pieces)| pieces)
            .map(|p| p.text.len() + p.packed.iter().map(|m| m.bytes.len()).sum::<usize>())
            .sum()
    }

    /// Seeds index `name` with pieces read back from its published files (a cold
    /// worker's baseline): each piece's text and its member in each of `codecs`.
    pub(crate) fn seed(&mut self, name: &str, codecs: &[Codec], read: Vec<(Bytes, Vec<Member>)>) {
        let pieces = read
            .into_iter()
            .map(|(text, packed)| Piece { text, packed })
            .collect();
        self.by_index
            .insert(name.to_string(), (codecs.to_vec(), pieces));
    }
}

/// Largest piece text accepted when reading pieces back (a bound on what one
/// member may claim to hold; real pieces are tens of kilobytes).
const MAX_PIECE_TEXT: u64 = 256 << 20;

/// A published file of `codec` split into its pieces: each one's member and text,
/// decoded for gzip and zstd, taken from `texts` (the pieces' texts, from another
/// encoding of the same index) for xz, whose blocks are found from the stream's
/// index and checked against the uncompressed sizes it records. `None` when the
/// file is not a sequence of whole members (or disagrees with `texts`).
pub(crate) fn split(
    codec: Codec,
    file: &Bytes,
    texts: Option<&[Bytes]>,
) -> Option<Vec<(Member, Bytes)>> {
    let members = match codec {
        Codec::Gzip => split_gzip(file)?,
        // Beside the texts another codec gave, frame sizes say enough: the file's
        // digest was checked against the signed listing, so it holds what was
        // published, and the sizes say its frames are the same pieces.
        Codec::Zstd if let Some(texts) = texts => {
            let frames = zstd_frames(file)?;
            if frames.len() != texts.len() {
                return None;
            }
            frames
                .into_iter()
                .zip(texts)
                .map(|((member, size), text)| {
                    (size == text.len() as u64).then(|| (member, text.clone()))
                })
                .collect::<Option<Vec<_>>>()?
        }
        Codec::Zstd => split_zstd(file)?,
        Codec::Xz => {
            let texts = texts?;
            let (header, blocks) = xz_blocks(file)?;
            // One block per piece with text (an empty piece has none).
            let with_text = texts.iter().filter(|t| !t.is_empty()).count();
            if header != xz_header() || blocks.len() != with_text {
                return None;
            }
            let mut blocks = blocks.into_iter();
            texts
                .iter()
                .map(|text| {
                    if text.is_empty() {
                        return Some((Member::whole(Vec::new()), text.clone()));
                    }
                    let (range, unpadded, size) = blocks.next()?;
                    (size == text.len() as u64).then(|| {
                        let member = Member {
                            bytes: file.slice(range),
                            unpadded,
                        };
                        (member, text.clone())
                    })
                })
                .collect::<Option<Vec<_>>>()?
        }
    };
    match texts {
        Some(texts) if texts.len() != members.len() => None,
        Some(texts) if members.iter().zip(texts).any(|((_, t), text)| t != text) => None,
        _ => Some(members),
    }
}

/// `file` cut into members by `one`, which reads the member at the start of what it
/// is given: its length in bytes and its text.
fn split_members(
    file: &Bytes,
    one: impl Fn(&[u8]) -> Option<(usize, Vec<u8>)>,
) -> Option<Vec<(Member, Bytes)>> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < file.len() {
        let rest = &file[offset..];
        let (used, text) = one(rest)?;
        if used == 0 || used > rest.len() || text.len() as u64 > MAX_PIECE_TEXT {
            return None;
        }
        let member = Member {
            bytes: file.slice(offset..offset + used),
            unpadded: 0,
        };
        out.push((member, Bytes::from(text)));
        offset += used;
    }
    (!out.is_empty()).then_some(out)
}

fn split_gzip(file: &Bytes) -> Option<Vec<(Member, Bytes)>> {
    use std::io::Read;
    split_members(file, |rest| {
        let mut decoder = flate2::bufread::GzDecoder::new(rest);
        let mut text = Vec::new();
        decoder
            .by_ref()
            .take(MAX_PIECE_TEXT + 1)
            .read_to_end(&mut text)
            .ok()?;
        Some((rest.len() - decoder.into_inner().len(), text))
    })
}

/// A file's zstd frames with their content sizes, without decoding them.
fn zstd_frames(file: &Bytes) -> Option<Vec<(Member, u64)>> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < file.len() {
        let rest = &file[offset..];
        let used = zstd::zstd_safe::find_frame_compressed_size(rest).ok()?;
        let size = zstd::zstd_safe::get_frame_content_size(rest).ok()??;
        if used == 0 || used > rest.len() || size > MAX_PIECE_TEXT {
            return None;
        }
        let member = Member {
            bytes: file.slice(offset..offset + used),
            unpadded: 0,
        };
        out.push((member, size));
        offset += used;
    }
    (!out.is_empty()).then_some(out)
}

fn split_zstd(file: &Bytes) -> Option<Vec<(Member, Bytes)>> {
    split_members(file, |rest| {
        let used = zstd::zstd_safe::find_frame_compressed_size(rest).ok()?;
        let size = zstd::zstd_safe::get_frame_content_size(rest).ok()??;
        if used > rest.len() || size > MAX_PIECE_TEXT {
            return None;
        }
        let text = zstd::bulk::decompress(&rest[..used], size as usize).ok()?;
        (text.len() as u64 == size).then_some((used, text))
    })
}

/// xz stream flags: no reserved bits, CRC64 checks (what liblzma writes by default).
const XZ_FLAGS: [u8; 2] = [0, 4];

fn crc32(parts: &[&[u8]]) -> [u8; 4] {
    let mut crc = flate2::Crc::new();
    for part in parts {
        crc.update(part);
    }
    crc.sum().to_le_bytes()
}

/// The stream header: magic, flags, their CRC32.
fn xz_header() -> [u8; 12] {
    let mut header = [
        0xFD,
        b'7',
        b'z',
        b'X',
        b'Z',
        0,
        XZ_FLAGS[0],
        XZ_FLAGS[1],
        0,
        0,
        0,
        0,
    ];
    header[8..].copy_from_slice(&crc32(&[&XZ_FLAGS]));
    header
}

/// The index (one record per block: unpadded and uncompressed size) and the footer
/// that end a stream.
fn xz_index_and_footer(records: &[(u64, u64)]) -> Vec<u8> {
    let mut index = vec![0u8];
    put_varint(&mut index, records.len() as u64);
    for (unpadded, size) in records {
        put_varint(&mut index, *unpadded);
        put_varint(&mut index, *size);
    }
    while index.len() % 4 != 0 {
        index.push(0);
    }
    let crc = crc32(&[&index]);
    index.extend_from_slice(&crc);
    let backward = u32::try_from(index.len() / 4 - 1)
        .expect("an index of a few thousand records")
        .to_le_bytes();
    index.extend_from_slice(&crc32(&[&backward, &XZ_FLAGS]));
    index.extend_from_slice(&backward);
    index.extend_from_slice(&XZ_FLAGS);
    index.extend_from_slice(b"YZ");
    index
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7F) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A block of an xz stream: its byte range (with padding and check), its unpadded
/// and its uncompressed size.
type XzBlock = (std::ops::Range<usize>, u64, u64);

/// A one-stream xz file's header and blocks: each one's byte range (with padding
/// and check), unpadded and uncompressed size, from the stream's index, which is
/// found from the footer (xz-file-format 1.2.1, sections 2.1 and 4).
fn xz_blocks(file: &[u8]) -> Option<([u8; 12], Vec<XzBlock>)> {
    const HEADER_MAGIC: [u8; 6] = [0xFD, b'7', b'z', b'X', b'Z', 0];
    let header: [u8; 12] = file.get(..12)?.try_into().ok()?;
    let end = file.len();
    let footer = file.get(end.checked_sub(12)?..end)?;
    if header[..6] != HEADER_MAGIC || &footer[10..12] != b"YZ" {
        return None;
    }
    let backward = (u32::from_le_bytes(footer[4..8].try_into().ok()?) as usize + 1) * 4;
    let index_start = end.checked_sub(12 + backward)?;
    let index = &file[index_start..end - 12];
    if index.first() != Some(&0) {
        return None;
    }
    let (records, mut pos) = varint(index, 1)?;
    let mut blocks = Vec::new();
    let mut offset = 12usize;
    for _ in 0..records {
        let (unpadded, next) = varint(index, pos)?;
        let (size, next) = varint(index, next)?;
        pos = next;
        let length = usize::try_from(unpadded.checked_add(3)? / 4 * 4).ok()?;
        blocks.push((offset..offset.checked_add(length)?, unpadded, size));
        offset += length;
    }
    (offset == index_start).then_some((header, blocks))
}

/// A multibyte integer of the xz format at `pos`: its value and the next position.
fn varint(data: &[u8], mut pos: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for shift in (0..63).step_by(7) {
        let byte = *data.get(pos)?;
        pos += 1;
        value |= u64::from(byte & 0x7F) << shift;
        if byte & 0x80 == 0 {
            return Some((value, pos));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn pieces_of(names: &[String]) -> Vec<Bytes> {
        let mut cut = Cutter::default();
        for (i, name) in names.iter().enumerate() {
            let sep = if i == 0 { "" } else { "\n" };
            cut.push(name, &[sep, "Package: ", name, "\nVersion: 1\n"]);
        }
        cut.finish()
    }

    fn unpack(codec: Codec, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match codec {
            Codec::Gzip => {
                flate2::read::MultiGzDecoder::new(body)
                    .read_to_end(&mut out)
                    .expect("gzip");
            }
            // One stream, as apt reads it (it stops after the first).
            Codec::Xz => {
                liblzma::read::XzDecoder::new(body)
                    .read_to_end(&mut out)
                    .expect("xz");
            }
            Codec::Zstd => out = zstd::stream::decode_all(body).expect("zstd"),
        }
        out
    }

    #[test]
    fn concatenated_pieces_decompress_to_the_text_and_only_changed_pieces_are_compressed() {
        let codecs = [Codec::Gzip, Codec::Xz, Codec::Zstd];
        let mut names: Vec<String> = (0..2000).map(|i| format!("pkg-{i:05}_1_all.deb")).collect();
        names.sort();
        let mut pieces = Pieces::default();
        let first = pieces.pack("idx", pieces_of(&names), &codecs, 2);
        let count = pieces_of(&names).len();
        assert!(count > 5, "2,000 packages make several pieces: {count}");
        assert_eq!(first.compressed, count);
        for (codec, body) in codecs.iter().zip(&first.packed) {
            assert_eq!(unpack(*codec, body), first.text, "{codec:?}");
        }
        // One package more in the first piece (not a boundary itself: that splits its
        // piece in two; nor in a piece the cap ended, whose end then moves): one piece
        // compressed again, the output equals a fresh build's byte for byte.
        let added = (0..)
            .map(|k| format!("pkg-00000-{k}_1_all.deb"))
            .find(|n| !ends_piece(n))
            .expect("some name is no boundary");
        names.push(added);
        names.sort();
        let second = pieces.pack("idx", pieces_of(&names), &codecs, 2);
        assert_eq!(second.compressed, 1);
        let fresh = Pieces::default().pack("idx", pieces_of(&names), &codecs, 1);
        assert_eq!(second.text, fresh.text);
        assert_eq!(second.packed, fresh.packed);
        for (codec, body) in codecs.iter().zip(&second.packed) {
            assert_eq!(unpack(*codec, body), second.text, "{codec:?}");
        }
        // The same again: nothing to compress.
        assert_eq!(
            pieces.pack("idx", pieces_of(&names), &codecs, 2).compressed,
            0
        );
        // Other codecs for the same index reuse nothing.
        assert_eq!(
            pieces
                .pack("idx", pieces_of(&names), &[Codec::Gzip], 2)
                .compressed,
            pieces_of(&names).len()
        );
    }

    #[test]
    fn published_files_split_back_into_the_pieces_they_were_packed_from() {
        let codecs = [Codec::Gzip, Codec::Xz, Codec::Zstd];
        let names: Vec<String> = (0..1500).map(|i| format!("pkg-{i:05}_1_all.deb")).collect();
        let parts = pieces_of(&names);
        let packed = Pieces::default().pack("idx", parts.clone(), &codecs, 2);
        let [gz, xz, zst] = [0, 1, 2].map(|i| packed.packed[i].clone());
        let from_gz = split(Codec::Gzip, &gz, None).expect("gzip members");
        let texts: Vec<Bytes> = from_gz.iter().map(|(_, t)| t.clone()).collect();
        assert_eq!(texts, parts);
        let from_zst = split(Codec::Zstd, &zst, Some(&texts)).expect("zstd frames");
        let from_xz = split(Codec::Xz, &xz, Some(&texts)).expect("xz blocks");
        // Seeded with them, a worker compresses nothing for the same index.
        let mut seeded = Pieces::default();
        seeded.seed(
            "idx",
            &codecs,
            (0..texts.len())
                .map(|i| {
                    let members = vec![
                        from_gz[i].0.clone(),
                        from_xz[i].0.clone(),
                        from_zst[i].0.clone(),
                    ];
                    (texts[i].clone(), members)
                })
                .collect(),
        );
        let again = seeded.pack("idx", parts.clone(), &codecs, 2);
        assert_eq!(again.compressed, 0);
        assert_eq!(again.packed, packed.packed);
        // A file that is not whole members, or disagrees with the texts: no split.
        let cut = gz.slice(..gz.len() - 1);
        assert!(split(Codec::Gzip, &cut, None).is_none());
        assert!(split(Codec::Xz, &xz.slice(1..), Some(&texts)).is_none());
        assert!(split(Codec::Xz, &xz, Some(&texts[1..])).is_none());
        assert!(split(Codec::Zstd, &zst.slice(..zst.len() - 2), Some(&texts)).is_none());
        let mut other = texts.clone();
        other[0] = Bytes::from_static(b"other");
        assert!(split(Codec::Zstd, &zst, Some(&other)).is_none());
    }

    #[test]
    fn boundaries_depend_on_names_only_and_are_capped() {
        // No name ends a piece: the cap does.
        let names: Vec<String> = (0..5000)
            .map(|i| format!("p{i}"))
            .filter(|n| !ends_piece(n))
            .take(2 * MAX_PIECE_PACKAGES + 1)
            .collect();
        assert_eq!(pieces_of(&names).len(), 3);
        assert_eq!(Cutter::default().finish(), vec![Bytes::new()]);
    }

    #[test]
    fn an_empty_index_is_a_valid_empty_file_in_every_encoding_and_splits_back() {
        let codecs = [Codec::Gzip, Codec::Xz, Codec::Zstd];
        let packed = Pieces::default().pack("idx", Cutter::default().finish(), &codecs, 1);
        for (codec, body) in codecs.iter().zip(&packed.packed) {
            assert_eq!(unpack(*codec, body), b"", "{codec:?}");
        }
        let texts = [Bytes::new()];
        for (codec, body) in codecs.iter().zip(&packed.packed) {
            let parts = split(*codec, body, Some(&texts)).expect("splits");
            assert_eq!(parts.len(), 1, "{codec:?}");
        }
    }
}
