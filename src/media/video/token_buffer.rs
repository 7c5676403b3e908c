//! Gives back the pages of libvpx's VP8 token buffer that no frame has written.
//!
//! At init the encoder allocates room for every token a frame could hold (mb_rows ×
//! mb_cols × 384 entries of two pointers' size: 7.4 MB at 640x480) with `vpx_calloc`,
//! which memsets it, so all of it is resident from the start. A frame writes its tokens
//! from the buffer's start (one thread) or from each macroblock row's start (threads),
//! at a real-time bitrate a small part of it. The pages are still zero right after init,
//! and a private anonymous page dropped with `MADV_DONTNEED` reads back as zeros, so
//! dropping them changes nothing libvpx can see; only the pages frames write come back.
//!
//! libvpx gives no handle on the buffer, so it is found among the pages that appeared
//! while the encoder was made, by its allocation's shape: glibc serves a block above the
//! mmap threshold (fixed at 128 KiB by [`crate::heap::bound`]) as a mapping of its own,
//! which starts with the chunk header (0, length | IS_MMAPPED), and `vpx_memalign`
//! stores the address malloc returned one word below the aligned pointer it hands out.
//! Exactly one block of the token buffer's length with that shape must be among the new
//! pages, or nothing is touched; then only pages that read all-zero are dropped.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;

const WORD: usize = size_of::<usize>();
/// glibc's flag for a chunk that is a mapping of its own.
const IS_MMAPPED: usize = 0x2;
/// Low bits of glibc's size field that are flags.
const SIZE_FLAGS: usize = 0x7;

/// Why no page was given back; the encoder works the same either way.
#[derive(Debug, thiserror::Error)]
pub enum NotReleased {
    #[error("reading this process's mappings: {0}")]
    Maps(std::io::Error),
    #[error("no block of the token buffer's {0} bytes among the pages the encoder mapped")]
    NotFound(usize),
    #[error("{count} blocks of the token buffer's {bytes} bytes among the new pages")]
    Ambiguous { count: usize, bytes: usize },
    #[error("madvise: {0}")]
    Madvise(std::io::Error),
}

/// The private anonymous read-write mappings of this process, at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonymousMappings(Vec<Range<usize>>);

impl AnonymousMappings {
    pub fn now() -> Result<Self, NotReleased> {
        let maps = std::fs::read_to_string("/proc/self/maps").map_err(NotReleased::Maps)?;
        Ok(Self::parse(&maps))
    }

    /// `start-end perms offset dev inode [path]` lines; anonymous ones have inode 0 and
    /// no path (`[heap]`, `[stack]` and files are left out).
    fn parse(maps: &str) -> Self {
        let ranges = maps
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_ascii_whitespace();
                let (range, perms) = (fields.next()?, fields.next()?);
                let inode = fields.nth(2)?;
                if perms != "rw-p" || inode != "0" || fields.next().is_some() {
                    return None;
                }
                let (start, end) = range.split_once('-')?;
                let start = usize::from_str_radix(start, 16).ok()?;
                let end = usize::from_str_radix(end, 16).ok()?;
                (start < end).then_some(start..end)
            })
            .collect();
        Self(ranges)
    }

    /// The parts of these mappings that `earlier` did not have.
    fn since(&self, earlier: &Self) -> Vec<Range<usize>> {
        let mut new = Vec::new();
        for range in &self.0 {
            let mut rest = vec![range.clone()];
            for old in &earlier.0 {
                rest = rest
                    .into_iter()
                    .flat_map(|r| {
                        [r.start..r.end.min(old.start), r.start.max(old.end)..r.end]
                            .into_iter()
                            .filter(|part| part.start < part.end)
                    })
                    .collect();
            }
            new.extend(rest);
        }
        new
    }
}

/// Bytes of the token buffer of an encoder for `width` x `height` (libvpx's
/// `vp8_alloc_compressor_data`: 24 blocks of 16 tokens per macroblock, each token a
/// pointer, a short and a char, padded to two pointers).
pub fn token_buffer_bytes(width: u32, height: u32) -> usize {
    let mbs = width.div_ceil(16) as usize * height.div_ceil(16) as usize;
    mbs * 24 * 16 * 2 * WORD
}

/// Drops the still-zero pages of the token buffer of the encoder made since `before`
/// (on this thread, before any frame); returns the bytes given back.
pub fn release(before: &AnonymousMappings, token_bytes: usize) -> Result<usize, NotReleased> {
    let page = page_size();
    let new = AnonymousMappings::now()?.since(before);
    let mem = File::open("/proc/self/mem").map_err(NotReleased::Maps)?;
    let blocks: Vec<Range<usize>> = new
        .iter()
        .flat_map(|range| {
            (range.start..range.end)
                .step_by(page)
                .map(move |p| (p, range))
        })
        .filter_map(|(start, range)| vpx_block(&mem, start, range.end, token_bytes, page))
        .collect();
    let [block] = blocks.as_slice() else {
        return Err(match blocks.len() {
            0 => NotReleased::NotFound(token_bytes),
            count => NotReleased::Ambiguous {
                count,
                bytes: token_bytes,
            },
        });
    };
    release_zero_pages(block.clone(), page)
}

/// The block starting at page `start` if it is a glibc mapping of `token_bytes` made by
/// `vpx_memalign`, within `limit`. Read through /proc/self/mem: another thread may unmap
/// pages it owns meanwhile, which makes the read fail instead of faulting.
fn vpx_block(
    mem: &File,
    start: usize,
    limit: usize,
    token_bytes: usize,
    page: usize,
) -> Option<Range<usize>> {
    let mut raw = [0u8; 4 * WORD];
    mem.read_exact_at(&mut raw, start as u64).ok()?;
    let word = |i: usize| usize::from_ne_bytes(raw[i * WORD..(i + 1) * WORD].try_into().unwrap());
    let (prev_size, size, stored) = (word(0), word(1), word(3));
    let len = size & !SIZE_FLAGS;
    // malloc's block is the mapping less its two-word header; libvpx's aligned pointer
    // is two words further on, the block's address stored just below it.
    let fits = (token_bytes + 4 * WORD..=token_bytes + 4 * WORD + 2 * page).contains(&len);
    let shaped = prev_size == 0 && size & SIZE_FLAGS == IS_MMAPPED && stored == start + 2 * WORD;
    (fits && shaped && start + len <= limit).then_some(start..start + len)
}

/// `MADV_DONTNEED` on each run of all-zero pages in `block`.
fn release_zero_pages(block: Range<usize>, page: usize) -> Result<usize, NotReleased> {
    let is_zero = |p: usize| {
        // SAFETY: `block` is the token buffer just allocated by the encoder this thread
        // made and still owns; no other thread writes it, and it stays mapped meanwhile.
        let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, page) };
        bytes.iter().all(|&b| b == 0)
    };
    let mut released = 0;
    let mut run: Option<usize> = None;
    for p in (block.start..block.end).step_by(page).chain([block.end]) {
        match (p < block.end && is_zero(p), run) {
            (true, None) => run = Some(p),
            (false, Some(from)) => {
                // SAFETY: whole pages of a private anonymous mapping that read all-zero;
                // after MADV_DONTNEED they read as zero pages again.
                let rc = unsafe {
                    libc::madvise(from as *mut libc::c_void, p - from, libc::MADV_DONTNEED)
                };
                if rc != 0 {
                    return Err(NotReleased::Madvise(std::io::Error::last_os_error()));
                }
                released += p - from;
                run = None;
            }
            _ => {}
        }
    }
    Ok(released)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_keep_only_private_anonymous_read_write_ranges() {
        let maps = "\
55e3462fb000-55e346470000 rw-p 00000000 00:00 0                          [heap]
7f1618000000-7f1618021000 rw-p 00000000 00:00 0 
7f1618021000-7f161c000000 ---p 00000000 00:00 0 
7f161d4cc000-7f161e262000 rw-p 00000000 00:00 0
7f161f6a8000-7f161f6d6000 rw-p 0003a000 fe:01 1234                       /usr/lib/libvpx.so.7
7ffc59732000-7ffc59753000 rw-p 00000000 00:00 0                          [stack]
";
        assert_eq!(
            AnonymousMappings::parse(maps).0,
            vec![
                0x7f16_1800_0000..0x7f16_1802_1000,
                0x7f16_1d4c_c000..0x7f16_1e26_2000
            ]
        );
    }

    #[test]
    fn new_pages_are_what_grew_or_appeared() {
        let before = AnonymousMappings(vec![0x1000..0x3000, 0x8000..0x9000]);
        // Merged with the first (grown both ways), and one new mapping.
        let after = AnonymousMappings(vec![0x0..0x5000, 0x8000..0x9000, 0xa000..0xc000]);
        assert_eq!(
            after.since(&before),
            vec![0x0..0x1000, 0x3000..0x5000, 0xa000..0xc000]
        );
    }

    #[test]
    fn token_buffer_is_384_two_pointer_entries_a_macroblock() {
        assert_eq!(token_buffer_bytes(640, 480), 40 * 30 * 384 * 2 * WORD);
        // Partial macroblocks count whole.
        assert_eq!(token_buffer_bytes(650, 481), 41 * 31 * 384 * 2 * WORD);
    }
}
