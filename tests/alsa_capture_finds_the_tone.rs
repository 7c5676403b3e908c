//! A microphone through the real alsa-lib with no sound card: an ALSA `file` PCM whose
//! `infile` holds a 1 kHz tone (made by ffmpeg). campeer captures it, encodes Opus, and a
//! webrtc-rs viewer decodes 1 kHz. (The file plugin is unpaced, so capture runs far
//! faster than real time; the tone is what is checked, not the pace.)

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::viewer::{Direction, Viewer};
use common::{Campeer, Relay};
use serde_json::json;

fn alsa_config(dir: &Path) -> std::path::PathBuf {
    let tone = dir.join("tone.raw");
    let ok = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1000:sample_rate=48000:duration=4",
        ])
        .args(["-f", "s16le", "-ac", "1"])
        .arg(&tone)
        .status()
        .expect("ffmpeg runs (scripts/setup installs it)")
        .success();
    assert!(ok);
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
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("alsa");
    std::fs::create_dir_all(&dir).unwrap();
    let conf = alsa_config(&dir);
    let relay = Relay::start();
    let conf = conf.to_string_lossy().into_owned();
    let mut campeer = Campeer::start(
        Some(&relay.url()),
        &[
            ("CAMPEER__AUDIO__SOURCE", "tonefile"),
            ("ALSA_CONFIG_PATH", &conf),
        ],
    );
    campeer
        .log
        .wait_for("microphone capturing at 48 kHz", Duration::from_secs(20));
    relay.out.wait_for("join 1", Duration::from_secs(20));

    let mut viewer = Viewer::call(&relay.url(), json!(1), Direction::RecvOnly).await;
    viewer.connected(Duration::from_secs(15)).await;
    let hz = viewer.tone_hz(Duration::from_secs(5)).await;
    assert!((hz - 1000.0).abs() < 10.0, "decoded {hz} Hz");
    viewer.hang_up().await;
    assert!(campeer.terminate().success());
}
