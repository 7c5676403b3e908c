//! glibc's heap, tuned for a daemon on a small board that a room can send megabyte
//! payloads.

/// A fixed mmap threshold (glibc otherwise raises it to the largest block freed, so a
/// flood of 1 MB messages stays resident after it ends, and libvpx's token buffer would
/// not be a mapping of its own: see [`crate::media::video::token_buffer`]), and two
/// arenas instead of eight per core, each holding its own free memory. Call it first
/// thing in `main`.
pub fn bound() {
    // SAFETY: mallopt only sets allocator parameters, under the allocator's own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Bytes the program holds on the heap, in every arena and in mmap'd blocks: what it
/// asked for and has not freed. RSS beside it tells live growth (this grows) from free
/// memory the allocator keeps (only RSS grows). It walks every arena under its lock:
/// for a status line, not a hot path.
pub fn in_use() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's counters, under its locks.
    let m = unsafe { libc::mallinfo2() };
    (m.uordblks + m.hblkhd) as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_heap_in_use_counts_a_block_until_it_is_freed() {
        const BLOCK: usize = 64 << 20;
        let before = super::in_use();
        let block = vec![1u8; BLOCK];
        let held = super::in_use();
        drop(std::hint::black_box(block));
        let after = super::in_use();
        // Other tests allocate meanwhile, but nowhere near 64 MB.
        assert!(held >= before + BLOCK as u64 / 2, "{before} → {held}");
        assert!(after + (BLOCK as u64 / 2) <= held, "{held} → {after}");
    }
}
