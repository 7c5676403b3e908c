//! A microphone through the real alsa-lib with no sound card: an ALSA `file` PCM whose
//! `infile` holds a 1 kHz tone (made by ffmpeg). campeer captures it, encodes Opus, and a
//! webrtc-rs viewer decodes 1 kHz. (The file plugin is unpaced, so capture runs far
//! faster than real time; the tone is what is checked, not the pace.)

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::viewer::Direction;
use common::{call_through_relay, ffmpeg};

/// An alsa-lib configuration in `dir` whose PCM `tonefile` plays a 1 kHz tone.
fn alsa_config(dir: &Path) -> PathBuf {
    let tone = dir.join("tone.raw");
    std::fs::write(&tone, ffmpeg::sine_s16le(1000, 4)).unwrap();
    let conf = dir.join("asound.conf");
    std::fs::write(
        &conf,
        format!(
            "pcm.tonefile {{\n type file\n slave.pcm \"silent\"\n file \"/dev/null\"\n infile \"{}\"\n format \"raw\"\n}}\npcm.silent {{ type null }}\n",
            tone.display()
        ),
    )
    .unwrap();
    conf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_pcm_tone_reaches_the_viewer() {
    let dir = tempfile::tempdir().unwrap();
    let conf = alsa_config(dir.path());
    let conf = conf.to_string_lossy().into_owned();
    let (_relay, mut campeer, mut viewer) = call_through_relay(
        &[
            ("CAMPEER__AUDIO__SOURCE", "tonefile"),
            ("ALSA_CONFIG_PATH", &conf),
        ],
        Direction::RecvOnly,
    )
    .await;
    campeer
        .log
        .wait_for("microphone capturing at 48 kHz", Duration::from_secs(20));
    let hz = viewer.tone_hz(Duration::from_secs(5)).await;
    assert!((hz - 1000.0).abs() < 10.0, "decoded {hz} Hz");
    viewer.hang_up().await;
    assert!(campeer.terminate().success());
}
