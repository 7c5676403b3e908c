//! What capture hardware this machine has, for `campeer devices`: every V4L2 node with
//! its formats, sizes and rates; every ALSA sound card; every PCM that can capture.

use std::fmt::Write as _;

use serde::Serialize;

use super::audio::alsa::{PcmInfo, list_capture_pcms};
use super::video::v4l2::{CameraInfo, list_cameras};

#[derive(Debug, Serialize)]
pub struct SoundCard {
    pub index: i32,
    pub name: String,
    pub long_name: String,
}

#[derive(Debug, Serialize)]
pub struct Inventory {
    pub cameras: Vec<CameraInfo>,
    pub sound_cards: Vec<SoundCard>,
    pub capture_pcms: Vec<PcmInfo>,
}

impl Inventory {
    pub fn probe() -> Self {
        let sound_cards = alsa::card::Iter::new()
            .filter_map(Result::ok)
            .map(|c| SoundCard {
                index: c.get_index(),
                name: c.get_name().unwrap_or_default(),
                long_name: c.get_longname().unwrap_or_default(),
            })
            .collect();
        Self {
            cameras: list_cameras(),
            sound_cards,
            capture_pcms: list_capture_pcms(),
        }
    }

    /// A table for people.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let cameras: Vec<&CameraInfo> = self.cameras.iter().filter(|c| c.is_camera).collect();
        if cameras.is_empty() {
            out.push_str("No camera: no V4L2 capture device under /dev/video*.\n");
        } else {
            out.push_str("Cameras\n");
        }
        for c in cameras {
            let _ = writeln!(
                out,
                "  {}  {} ({}, {})",
                c.path.display(),
                c.card,
                c.driver,
                c.bus
            );
            for f in c.formats.iter().filter(|f| f.format.is_some()) {
                let sizes: Vec<String> = f
                    .sizes
                    .iter()
                    .map(|s| {
                        let rates: Vec<String> = s
                            .fps
                            .iter()
                            .map(|r| {
                                format!("{r:.4}")
                                    .trim_end_matches('0')
                                    .trim_end_matches('.')
                                    .to_owned()
                            })
                            .collect();
                        format!("{}x{}@{}", s.width, s.height, rates.join("/"))
                    })
                    .collect();
                let _ = writeln!(out, "    {:<4} {}", f.fourcc, sizes.join("  "));
            }
            // A test driver offers dozens of formats campeer cannot take: one line, not one each.
            let unusable: Vec<&str> = c
                .formats
                .iter()
                .filter(|f| f.format.is_none())
                .map(|f| f.fourcc.trim())
                .collect();
            if !unusable.is_empty() {
                let _ = writeln!(
                    out,
                    "    not supported by campeer ({}): {}",
                    unusable.len(),
                    unusable.join(" ")
                );
            }
        }
        let others: Vec<&CameraInfo> = self.cameras.iter().filter(|c| !c.is_camera).collect();
        for c in others {
            let _ = writeln!(
                out,
                "  ({} {}: not a capture node)",
                c.path.display(),
                c.card
            );
        }
        if self.sound_cards.is_empty() {
            out.push_str("No sound card: ALSA lists no cards.\n");
        } else {
            out.push_str("Sound cards\n");
            for s in &self.sound_cards {
                let _ = writeln!(out, "  {}  {}  {}", s.index, s.name, s.long_name);
            }
        }
        if !self.capture_pcms.is_empty() {
            out.push_str("Capture PCMs (audio.source)\n");
            for p in &self.capture_pcms {
                let _ = writeln!(out, "  {:<28} {}", p.name, p.description);
            }
        }
        out
    }
}
