//! Inside the VM of `scripts/vm-test` (ignored elsewhere): a whole call on real drivers.
//! campeer captures vivid's /dev/video0 and snd-aloop's hw:Loopback,1,0 while a 1 kHz
//! tone is played into hw:Loopback,0,0; the relay and a webrtc-rs viewer run on the VM's
//! loopback. Then the camera is unplugged (vivid's `disconnect`, then rmmod) and plugged
//! back (modprobe): the viewer stays connected, sees "no signal", and live frames again.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use campeer::media::audio::tone::estimate_frequency;
use campeer::media::video::test_pattern::NO_SIGNAL_LUMA;
use common::viewer::{Direction, Seen, Viewer};
use common::{Campeer, Relay};
use serde_json::json;

/// Plays a 1 kHz tone into the loopback card's playback side for `secs` seconds.
fn play_tone(secs: u32) -> Child {
    let dir = std::env::temp_dir();
    let raw = dir.join("tone-1k.raw");
    let mut tone = campeer::media::audio::tone::Tone::new(1000.0);
    let mut pcm = vec![0i16; 48_000 * secs as usize];
    tone.fill(&mut pcm);
    std::fs::write(
        &raw,
        pcm.iter()
            .flat_map(|s| s.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    Command::new("aplay")
        .args([
            "-q",
            "-D",
            "hw:Loopback,0,0",
            "-f",
            "S16_LE",
            "-r",
            "48000",
            "-c",
            "1",
            "-t",
            "raw",
        ])
        .arg(&raw)
        .stdout(Stdio::null())
        .spawn()
        .expect("aplay (alsa-utils)")
}

fn modprobe(args: &[&str]) {
    let cmd = std::env::var("CAMPEER_VM_MODPROBE").expect("set by scripts/vm-test");
    let mut parts = cmd.split_whitespace();
    let ok = Command::new(parts.next().unwrap())
        .args(parts)
        .args(args)
        .status()
        .unwrap()
        .success();
    assert!(ok, "modprobe {args:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs vivid and snd-aloop: scripts/vm-test"]
async fn call_on_real_drivers_survives_unplug_and_replug() {
    assert!(
        std::env::var_os("CAMPEER_VM").is_some(),
        "run through scripts/vm-test"
    );
    let mut aplay = play_tone(120);
    let relay = Relay::start();
    let mut campeer = Campeer::start(
        Some(&relay.url()),
        &[
            ("CAMPEER__VIDEO__SOURCE", "/dev/video0"),
            ("CAMPEER__VIDEO__WIDTH", "640"),
            ("CAMPEER__VIDEO__HEIGHT", "360"),
            ("CAMPEER__VIDEO__FPS", "15"),
            ("CAMPEER__AUDIO__SOURCE", "hw:Loopback,1,0"),
        ],
    );
    campeer
        .log
        .wait_for("camera streaming", Duration::from_secs(30));
    relay.out.wait_for("join 1", Duration::from_secs(30));

    let mut viewer = Viewer::call(&relay.url(), json!(1), Direction::RecvOnly).await;
    viewer.connected(Duration::from_secs(30)).await;
    let live = viewer.next_video(Duration::from_secs(10)).await;
    assert_eq!((live.width, live.height), (640, 360));
    assert_eq!(live.counter, None, "vivid's picture, not campeer's pattern");
    // RTP time moves forward with the camera's frames. (Against the viewer's clock it ran at
    // 96-105 kHz here: vivid's timestamps and the emulated scheduler both drift too much for
    // a rate check, so the rate is reported, not asserted.)
    let (t0, r0) = (live.at, live.rtp_time);
    let mut last = live.clone();
    while last.at.duration_since(t0) < Duration::from_secs(3) {
        let f = viewer.next_video(Duration::from_secs(5)).await;
        assert!(
            f.rtp_time.wrapping_sub(last.rtp_time) < 90_000,
            "RTP time moves forward"
        );
        last = f;
    }
    let rate = f64::from(last.rtp_time.wrapping_sub(r0)) / last.at.duration_since(t0).as_secs_f64();
    eprintln!("RTP clock against the viewer's wall clock: {rate:.0} Hz");
    let mut pcm = Vec::new();
    while pcm.len() < 48_000 {
        pcm.extend(viewer.next_audio(Duration::from_secs(5)).await);
    }
    let hz = estimate_frequency(&pcm[9_600..]);
    eprintln!("tone through snd-aloop decoded at {hz:.1} Hz");
    assert!((hz - 1000.0).abs() < 10.0, "{hz} Hz");

    // Unplug: vivid's USB-disconnect emulation fails campeer's stream with ENODEV; campeer
    // closes the device at once and sends "no signal" for a second before it retries,
    // which is the moment the module can go (tried every 20 ms from here).
    let ok = Command::new("v4l2-ctl")
        .args(["-d", "/dev/video0", "-c", "disconnect=1"])
        .status()
        .unwrap()
        .success();
    assert!(ok, "v4l2-ctl disconnect");
    let unplug = std::thread::spawn(|| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if Command::new("rmmod")
                .arg("vivid")
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    });
    let grey = viewer
        .expect(Duration::from_secs(10), |s| match s {
            Seen::Video(f)
                if f.counter.is_some() && f.mean_luma.abs_diff(u32::from(NO_SIGNAL_LUMA)) < 12 =>
            {
                Some(f)
            }
            _ => None,
        })
        .await;
    eprintln!("no-signal picture after unplug: luma {}", grey.mean_luma);
    assert!(
        unplug.join().unwrap(),
        "rmmod vivid while campeer had let go of it"
    );
    // Still connected, still numbered no-signal frames while the camera is away.
    let away = viewer.next_video(Duration::from_secs(5)).await;
    assert!(away.counter.is_some(), "no signal while unplugged");

    // Replug: live frames again within 3 s of the device's return.
    modprobe(&["vivid", "n_devs=1", "node_types=0x1"]);
    let back = Instant::now();
    let again = viewer
        .expect(Duration::from_secs(10), |s| match s {
            Seen::Video(f) if f.counter.is_none() => Some(f),
            _ => None,
        })
        .await;
    let took = again.at.saturating_duration_since(back);
    eprintln!("live frames again {took:?} after modprobe");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!((again.width, again.height), (640, 360));

    // Dropped buffers (gaps in the driver's sequence) and an injected QBUF error never end
    // the track: frames keep coming, live again after at most a reopen.
    let ctl = |c: &str| {
        let ok = Command::new("v4l2-ctl")
            .args(["-d", "/dev/video0", "-c", c])
            .status()
            .unwrap()
            .success();
        assert!(ok, "v4l2-ctl -c {c}");
    };
    ctl("percentage_of_dropped_buffers=30");
    for _ in 0..10 {
        let f = viewer.next_video(Duration::from_secs(5)).await;
        assert_eq!(
            f.counter, None,
            "live frames while 30 % of buffers are dropped"
        );
    }
    ctl("percentage_of_dropped_buffers=0");
    ctl("inject_vidioc_qbuf_error=1");
    let injected = Instant::now();
    // Whatever campeer does about it (reopen), live frames are back soon.
    let mut live_again = false;
    while !live_again && injected.elapsed() < Duration::from_secs(8) {
        live_again = viewer
            .next_video(Duration::from_secs(5))
            .await
            .counter
            .is_none()
            && injected.elapsed() > Duration::from_secs(2);
    }
    assert!(live_again, "live frames after an injected QBUF error");

    viewer.hang_up().await;
    assert!(campeer.terminate().success());
    let _ = aplay.kill();
    let _ = aplay.wait();
}
