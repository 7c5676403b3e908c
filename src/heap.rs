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
