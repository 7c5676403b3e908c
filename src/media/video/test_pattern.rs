//! The built-in camera: a picture that changes every frame and carries its frame number
//! as big black and white blocks, large enough to survive VP8 at low bitrates, so a
//! receiver can read the number back from decoded pixels and prove frames arrive in order.

use crate::media::frame::I420Frame;

/// Side of one counter block in luma pixels: a whole VP8 macroblock.
const BLOCK: u32 = 16;
const BITS: u32 = 24;
const WHITE: u8 = 235;
const BLACK: u8 = 16;

/// Where the counter lives: a guard row of alternating blocks, then the data bits.
#[derive(Debug, Clone, Copy)]
struct Layout {
    cols: u32,
    rows: u32,
}

impl Layout {
    fn for_size(width: u32, height: u32) -> Option<Self> {
        let cols = (width / BLOCK).min(12);
        if cols < 2 {
            return None;
        }
        let rows = BITS.div_ceil(cols) + 1;
        (rows * BLOCK <= height).then_some(Self { cols, rows })
    }

    /// The luma value block (col, row) carries for `counter`.
    fn value(&self, col: u32, row: u32, counter: u32) -> u8 {
        let bit = if row == 0 {
            col.is_multiple_of(2)
        } else {
            let i = (row - 1) * self.cols + col;
            i < BITS && counter >> (BITS - 1 - i) & 1 == 1
        };
        if bit { WHITE } else { BLACK }
    }
}

pub struct TestPattern {
    width: u32,
    height: u32,
    layout: Option<Layout>,
}

impl TestPattern {
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            layout: Layout::for_size(width, height),
        }
    }

    /// Paints frame `counter` into `frame` (which must be this pattern's size).
    pub fn draw(&mut self, frame: &mut I420Frame, counter: u32) {
        debug_assert_eq!(frame.size(), (self.width, self.height));
        let (w, h) = (self.width as usize, self.height as usize);
        let shift = (counter as usize * 4) % w.max(1);
        let bar = (counter as usize * 6) % w.max(1);
        let (y, u, v) = frame.planes_mut();
        for row in 0..h {
            let line = &mut y[row * w..(row + 1) * w];
            for (x, px) in line.iter_mut().enumerate() {
                let ramp = ((x + shift) % w * 200 / w.max(1)) as u8 + 28;
                *px = if x.abs_diff(bar) < 8 {
                    WHITE
                } else {
                    ramp.wrapping_add((row / 4) as u8 % 16)
                };
            }
        }
        let (cw, ch) = (w / 2, h / 2);
        for row in 0..ch {
            for x in 0..cw {
                u[row * cw + x] = (64 + (x * 128 / cw.max(1))) as u8;
                v[row * cw + x] = (192 - (row * 128 / ch.max(1))) as u8;
            }
        }
        self.draw_counter(frame, counter);
    }

    fn draw_counter(&self, frame: &mut I420Frame, counter: u32) {
        let cw = (self.width / 2) as usize;
        let (y, u, v) = frame.planes_mut();
        if let Some(layout) = self.layout {
            for r in 0..layout.rows {
                for c in 0..layout.cols {
                    let val = layout.value(c, r, counter);
                    for dy in 0..BLOCK {
                        let start = ((r * BLOCK + dy) * self.width + c * BLOCK) as usize;
                        y[start..start + BLOCK as usize].fill(val);
                    }
                    for dy in 0..BLOCK / 2 {
                        let start = ((r * BLOCK / 2 + dy) as usize) * cw + (c * BLOCK / 2) as usize;
                        u[start..start + (BLOCK / 2) as usize].fill(128);
                        v[start..start + (BLOCK / 2) as usize].fill(128);
                    }
                }
            }
        }
    }
}

impl TestPattern {
    /// The picture shown while the camera is away: flat dark grey, still numbered, so the
    /// track keeps running and a viewer can tell it from both the camera and the pattern.
    pub fn draw_no_signal(&mut self, frame: &mut I420Frame, counter: u32) {
        let (y, u, v) = frame.planes_mut();
        y.fill(NO_SIGNAL_LUMA);
        u.fill(128);
        v.fill(128);
        self.draw_counter(frame, counter);
    }
}

/// Luma of the "no signal" picture.
pub const NO_SIGNAL_LUMA: u8 = 40;

/// Reads the counter back from a decoded luma plane; `None` when the guard row is not
/// there (not this pattern, or too damaged to trust).
pub fn read_counter(y: &[u8], stride: usize, width: u32, height: u32) -> Option<u32> {
    let layout = Layout::for_size(width, height)?;
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
        if bit(c, 0)? != (c % 2 == 0) {
            return None;
        }
    }
    let mut counter = 0u32;
    for i in 0..BITS {
        counter = counter << 1 | u32::from(bit(i % layout.cols, 1 + i / layout.cols)?);
    }
    Some(counter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_round_trips_in_raw_pixels() {
        for (w, h) in [(160, 120), (320, 240), (640, 480), (1280, 720)] {
            let mut p = TestPattern::new(w, h);
            let mut f = I420Frame::new(w, h);
            for n in [0, 1, 2, 255, 4096, 0xABCDEF, (1 << 24) - 1] {
                p.draw(&mut f, n);
                assert_eq!(
                    read_counter(f.y(), w as usize, w, h),
                    Some(n),
                    "{w}x{h} {n}"
                );
            }
        }
    }

    #[test]
    fn the_picture_moves_every_frame() {
        let mut p = TestPattern::new(320, 240);
        let (mut a, mut b) = (I420Frame::new(320, 240), I420Frame::new(320, 240));
        p.draw(&mut a, 10);
        p.draw(&mut b, 11);
        let below_counter = 80 * 320;
        assert_ne!(a.y()[below_counter..], b.y()[below_counter..]);
    }

    #[test]
    fn other_pictures_read_as_none() {
        let flat = vec![128u8; 320 * 240];
        assert_eq!(read_counter(&flat, 320, 320, 240), None);
        assert_eq!(read_counter(&flat[..100], 320, 320, 240), None);
        assert_eq!(read_counter(&flat, 320, 16, 16), None);
    }
}
