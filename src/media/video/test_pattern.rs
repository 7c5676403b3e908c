//! The built-in camera: a still picture with a square that moves every frame, and two
//! numbers drawn as big black and white blocks, large enough to survive VP8 at low
//! bitrates, so a receiver can read them back from decoded pixels: the frame number
//! (frames arrive in order) and the capture time (how old a frame is when shown).
//!
//! The blocks, for a reader in any language: each is 16x16 luma pixels, block (col, row)
//! at x = 16 col, y = 16 row from the top-left corner; white (235) is 1, black (16) is
//! 0; read the centre 8x8 and compare its mean with 128. There are `cols` = min(width /
//! 16, 12) columns. Row 0 is the guard, white where col is even. Then the frame number,
//! 24 bits, most significant first, bit i at col i % cols, row 1 + i / cols. Then, from
//! the next row down, the capture time in milliseconds since the Unix epoch, 48 bits,
//! laid out alike (absent when the picture is too short for it).
//!
//! Only what changes is drawn each frame (the square's band and the blocks): a frame
//! buffer reused from an earlier frame of the same pattern already holds the rest.

use crate::media::frame::I420Frame;

/// Side of one block in luma pixels: a whole VP8 macroblock.
const BLOCK: u32 = 16;
const COUNTER_BITS: u32 = 24;
const STAMP_BITS: u32 = 48;
const WHITE: u8 = 235;
const BLACK: u8 = 16;
/// Height of the band the square moves in, and the square's side.
const BAND: u32 = 64;
/// Pixels the square moves per frame.
const STEP: u32 = 6;

/// Where the blocks live: the guard row, the counter rows, then the stamp rows.
#[derive(Debug, Clone, Copy)]
struct Layout {
    cols: u32,
    counter_rows: u32,
    stamp_rows: u32,
}

impl Layout {
    /// `None` when not even the counter fits; `stamp_rows` is 0 when the stamp does not.
    fn for_size(width: u32, height: u32) -> Option<Self> {
        let cols = (width / BLOCK).min(12);
        if cols < 2 {
            return None;
        }
        let counter_rows = COUNTER_BITS.div_ceil(cols);
        if (1 + counter_rows) * BLOCK > height {
            return None;
        }
        let stamp_rows = STAMP_BITS.div_ceil(cols);
        let stamp_fits = (1 + counter_rows + stamp_rows) * BLOCK <= height;
        Some(Self {
            cols,
            counter_rows,
            stamp_rows: if stamp_fits { stamp_rows } else { 0 },
        })
    }

    fn rows(&self) -> u32 {
        1 + self.counter_rows + self.stamp_rows
    }

    /// The block row where the stamp's bits start.
    fn stamp_row(&self) -> u32 {
        1 + self.counter_rows
    }

    /// Whether block (col, row) is white for this counter and stamp.
    fn bit(&self, col: u32, row: u32, counter: u32, unix_ms: u64) -> bool {
        if row == 0 {
            return col.is_multiple_of(2);
        }
        let bit_of = |first_row: u32, bits: u32, value: u64| {
            let i = (row - first_row) * self.cols + col;
            i < bits && value >> (bits - 1 - i) & 1 == 1
        };
        if row < self.stamp_row() {
            bit_of(1, COUNTER_BITS, u64::from(counter))
        } else {
            bit_of(self.stamp_row(), STAMP_BITS, unix_ms)
        }
    }
}

pub struct TestPattern {
    width: u32,
    height: u32,
    layout: Option<Layout>,
    /// First luma row of the square's band, and its height (0: no room for one).
    band: (u32, u32),
    /// The background's luma along one row, before the per-row texture is added.
    ramp: Vec<u8>,
    /// Sensor noise below the blocks, when asked for.
    grain: Option<Grain>,
}

/// A camera sensor's noise: a different speckle on every frame, so the encoder spends
/// its whole bitrate as it does on a real camera (the plain pattern is nearly still and
/// fits in a few hundred kbit/s whatever the target). A linear congruential generator:
/// cheap, and the same frames every run.
#[derive(Debug, Clone, Copy)]
struct Grain(u32);

impl Grain {
    fn sprinkle(&mut self, line: &mut [u8]) {
        for px in line {
            self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *px = px.saturating_add((self.0 >> 30) as u8);
        }
    }
}

impl TestPattern {
    pub fn new(width: u32, height: u32) -> Self {
        let layout = Layout::for_size(width, height);
        let top = layout.map_or(0, |l| (l.rows() + 1) * BLOCK).min(height);
        // Even rows and heights keep the band on whole chroma rows.
        let band_height = BAND.min(height - top).min(width) & !1;
        let w = width.max(1) as usize;
        Self {
            width,
            height,
            layout,
            band: (top & !1, band_height),
            ramp: (0..w).map(|x| (x * 200 / w) as u8 + 28).collect(),
            grain: None,
        }
    }

    /// The pattern under sensor noise (see [`Grain`]): everything below the blocks is
    /// repainted every frame.
    pub fn noisy(mut self) -> Self {
        self.grain = Some(Grain(1));
        self
    }

    /// Paints the whole of frame `counter`, captured at `unix_ms`, into `frame` (which
    /// must be this pattern's size).
    pub fn draw(&mut self, frame: &mut I420Frame, counter: u32, unix_ms: u64) {
        debug_assert_eq!(frame.size(), (self.width, self.height));
        let (w, h) = (self.width as usize, self.height as usize);
        let (y, u, v) = frame.planes_mut();
        for row in 0..h {
            self.background_row(&mut y[row * w..(row + 1) * w], row);
        }
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        for row in 0..ch {
            for x in 0..cw {
                u[row * cw + x] = (64 + (x * 128 / cw.max(1))) as u8;
                v[row * cw + x] = (192 - (row * 128 / ch.max(1))) as u8;
            }
        }
        self.update(frame, counter, unix_ms);
    }

    /// Paints frame `counter` into a buffer that holds an earlier frame of this pattern:
    /// only the square's band and the blocks, a few percent of the picture (all below the
    /// blocks when noisy).
    pub fn update(&mut self, frame: &mut I420Frame, counter: u32, unix_ms: u64) {
        debug_assert_eq!(frame.size(), (self.width, self.height));
        let w = self.width as usize;
        let (top, side) = (self.band.0 as usize, self.band.1 as usize);
        let travel = (w - side + 1) as u64;
        let left = (u64::from(counter) * u64::from(STEP) % travel) as usize;
        let rows = match self.grain {
            Some(_) => top..self.height as usize,
            None => top..top + side,
        };
        let mut grain = self.grain;
        let y = frame.planes_mut().0;
        for row in rows {
            let line = &mut y[row * w..(row + 1) * w];
            self.background_row(line, row);
            if row < top + side {
                line[left..left + side].fill(WHITE);
            }
            if let Some(g) = &mut grain {
                g.sprinkle(line);
            }
        }
        self.grain = grain;
        self.draw_blocks(frame, counter, unix_ms);
    }

    /// The picture shown while the camera is away: flat dark grey, still numbered and
    /// stamped, so the track keeps running and a viewer can tell it from both the camera
    /// and the pattern.
    pub fn draw_no_signal(&mut self, frame: &mut I420Frame, counter: u32, unix_ms: u64) {
        let (y, u, v) = frame.planes_mut();
        y.fill(NO_SIGNAL_LUMA);
        u.fill(128);
        v.fill(128);
        self.draw_blocks(frame, counter, unix_ms);
    }

    fn background_row(&self, line: &mut [u8], row: usize) {
        let texture = (row / 4 % 16) as u8;
        for (px, &base) in line.iter_mut().zip(&self.ramp) {
            *px = base + texture;
        }
    }

    fn draw_blocks(&self, frame: &mut I420Frame, counter: u32, unix_ms: u64) {
        let Some(layout) = self.layout else {
            return;
        };
        let (w, cw) = (self.width as usize, self.width.div_ceil(2) as usize);
        let (b, half) = (BLOCK as usize, (BLOCK / 2) as usize);
        let (y, u, v) = frame.planes_mut();
        for r in 0..layout.rows() as usize {
            for c in 0..layout.cols as usize {
                let white = layout.bit(c as u32, r as u32, counter, unix_ms);
                let val = if white { WHITE } else { BLACK };
                for dy in 0..b {
                    let start = (r * b + dy) * w + c * b;
                    y[start..start + b].fill(val);
                }
                for dy in 0..half {
                    let start = (r * half + dy) * cw + c * half;
                    u[start..start + half].fill(128);
                    v[start..start + half].fill(128);
                }
            }
        }
    }
}

/// Luma of the "no signal" picture.
pub const NO_SIGNAL_LUMA: u8 = 40;

/// Reads `bits` bits starting at block row `first_row` from a decoded luma plane, once
/// the guard row proves this is the pattern; `None` if it is not (or too damaged).
fn read_bits(y: &[u8], stride: usize, layout: Layout, first_row: u32, bits: u32) -> Option<u64> {
    let bit = |col: u32, row: u32| -> Option<bool> {
        // The block's centre half: its edges ring after compression.
        let (x0, y0) = (
            (col * BLOCK + BLOCK / 4) as usize,
            (row * BLOCK + BLOCK / 4) as usize,
        );
        let n = (BLOCK / 2) as usize;
        let mut sum = 0usize;
        for dy in 0..n {
            let start = (y0 + dy) * stride + x0;
            sum += y
                .get(start..start + n)?
                .iter()
                .map(|&p| p as usize)
                .sum::<usize>();
        }
        Some(sum / (n * n) > 128)
    };
    for c in 0..layout.cols {
        if bit(c, 0)? != c.is_multiple_of(2) {
            return None;
        }
    }
    let mut value = 0u64;
    for i in 0..bits {
        value = value << 1 | u64::from(bit(i % layout.cols, first_row + i / layout.cols)?);
    }
    Some(value)
}

/// Reads the frame number back from a decoded luma plane; `None` when the guard row is
/// not there (not this pattern, or too damaged to trust).
pub fn read_counter(y: &[u8], stride: usize, width: u32, height: u32) -> Option<u32> {
    let layout = Layout::for_size(width, height)?;
    read_bits(y, stride, layout, 1, COUNTER_BITS).map(|v| v as u32)
}

/// Reads the capture time (ms since the Unix epoch) back from a decoded luma plane;
/// `None` when the guard row is not there or the picture is too short for the stamp.
pub fn read_stamp(y: &[u8], stride: usize, width: u32, height: u32) -> Option<u64> {
    let layout = Layout::for_size(width, height).filter(|l| l.stamp_rows > 0)?;
    read_bits(y, stride, layout, layout.stamp_row(), STAMP_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-02 09:30:00.123 UTC, and the largest value 48 bits carry.
    const STAMPS: [u64; 3] = [1_796_203_800_123, 0, (1 << 48) - 1];

    #[test]
    fn counter_round_trips_in_raw_pixels() {
        for (w, h) in [(160, 120), (320, 240), (640, 480), (1280, 720)] {
            let mut p = TestPattern::new(w, h);
            let mut f = I420Frame::new(w, h);
            for n in [0, 1, 2, 255, 4096, 0xABCDEF, (1 << 24) - 1] {
                p.draw(&mut f, n, STAMPS[0]);
                assert_eq!(
                    read_counter(f.y(), w as usize, w, h),
                    Some(n),
                    "{w}x{h} {n}"
                );
            }
        }
    }

    #[test]
    fn capture_time_round_trips_to_the_millisecond() {
        for (w, h) in [(320, 240), (640, 480), (1280, 720)] {
            let mut p = TestPattern::new(w, h);
            let mut f = I420Frame::new(w, h);
            p.draw(&mut f, 0, 1);
            for (n, ms) in STAMPS.into_iter().enumerate() {
                p.update(&mut f, n as u32 + 7, ms);
                assert_eq!(read_stamp(f.y(), w as usize, w, h), Some(ms), "{w}x{h}");
                assert_eq!(read_counter(f.y(), w as usize, w, h), Some(n as u32 + 7));
            }
            p.draw_no_signal(&mut f, 9, STAMPS[0]);
            assert_eq!(read_stamp(f.y(), w as usize, w, h), Some(STAMPS[0]));
        }
    }

    #[test]
    fn a_picture_too_short_for_the_stamp_reads_none() {
        let mut p = TestPattern::new(160, 120);
        let mut f = I420Frame::new(160, 120);
        p.draw(&mut f, 5, STAMPS[0]);
        assert_eq!(read_counter(f.y(), 160, 160, 120), Some(5));
        assert_eq!(read_stamp(f.y(), 160, 160, 120), None);
    }

    #[test]
    fn updating_a_reused_buffer_paints_what_a_full_draw_paints() {
        let (w, h) = (320, 240);
        let mut p = TestPattern::new(w, h);
        let (mut full, mut reused) = (I420Frame::new(w, h), I420Frame::new(w, h));
        p.draw(&mut reused, 3, 1000);
        for n in [4, 40, 41, 1234] {
            p.update(&mut reused, n, 2000 + u64::from(n));
            p.draw(&mut full, n, 2000 + u64::from(n));
            assert_eq!(reused.data(), full.data(), "frame {n}");
        }
    }

    #[test]
    fn noise_changes_every_frame_and_spares_the_blocks() {
        let (w, h) = (320, 240);
        let mut p = TestPattern::new(w, h).noisy();
        let mut f = I420Frame::new(w, h);
        p.draw(&mut f, 1, STAMPS[0]);
        let first = f.y().to_vec();
        p.update(&mut f, 1, STAMPS[0]);
        let below_band = ((p.band.0 + p.band.1) * w) as usize;
        assert_ne!(
            first[below_band..],
            f.y()[below_band..],
            "the still part is noisy"
        );
        for n in [2, 0xABCDEF] {
            p.update(&mut f, n, STAMPS[0]);
            assert_eq!(read_counter(f.y(), w as usize, w, h), Some(n));
            assert_eq!(read_stamp(f.y(), w as usize, w, h), Some(STAMPS[0]));
        }
    }

    #[test]
    fn the_picture_moves_every_frame() {
        let mut p = TestPattern::new(320, 240);
        let (mut a, mut b) = (I420Frame::new(320, 240), I420Frame::new(320, 240));
        p.draw(&mut a, 10, 0);
        p.draw(&mut b, 11, 0);
        let below_blocks = 8 * 16 * 320;
        assert_ne!(a.y()[below_blocks..], b.y()[below_blocks..]);
    }

    #[test]
    fn other_pictures_read_as_none() {
        let flat = vec![128u8; 320 * 240];
        assert_eq!(read_counter(&flat, 320, 320, 240), None);
        assert_eq!(read_counter(&flat[..100], 320, 320, 240), None);
        assert_eq!(read_counter(&flat, 320, 16, 16), None);
        assert_eq!(read_stamp(&flat, 320, 320, 240), None);
    }
}
