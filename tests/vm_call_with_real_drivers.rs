//! Inside the VM of `scripts/vm-test` (ignored elsewhere): a whole call on real drivers.
//! campeer captures vivid's /dev/video0 and snd-aloop's hw:Loopback,1,0 while a 1 kHz
//! tone is played into hw:Loopback,0,0; the relay and a webrtc-rs viewer run on the VM's
//! loopback. Then the camera is unplugged (vivid's `disconnect`, then rmmod) and plugged
//! back (modprobe): the viewer stays connected, sees "no signal", and live frames again.
//! Before that, campeer is stopped for 300 ms: snd-aloop overruns, and the tone goes on.
//! And a camera whose buffer timestamps the test chooses (v4l2loopback) proves that RTP
//! time is the driver's time, not the time campeer dequeued the frame.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use campeer::media::I420Frame;
use campeer::media::pace::unix_ms;
use campeer::media::video::test_pattern::{NO_SIGNAL_LUMA, TestPattern};
use campeer::media::video::v4l2::describe;
use common::viewer::{Direction, Seen, VideoFrame, Viewer};
use common::vm::{in_vm, load_loopback_camera};
use common::{Campeer, Relay, START_DEADLINE, call_through_relay};

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

/// The longest wait for the next frame: a guest under software emulation on a busy host
/// was seen to stall campeer for 3 s.
const FRAME_WAIT: Duration = Duration::from_secs(10);

/// The longest wait for the picture to change when the camera goes or comes back: only
/// against a hang (live frames came back 6.2 s after a replug at worst, on a busy host).
const CAMERA_CHANGE_WAIT: Duration = Duration::from_secs(30);

/// Picks a live frame: the camera's picture, not campeer's numbered pattern.
fn live_frame(seen: Seen) -> Option<VideoFrame> {
    match seen {
        Seen::Video(f) if f.counter.is_none() => Some(f),
        _ => None,
    }
}

/// The relay, campeer streaming a camera (`env` names it) into the room, and a viewer
/// connected to it.
async fn watch_camera(env: &[(&str, &str)]) -> (Relay, Campeer, Viewer) {
    let (relay, campeer, viewer) = call_through_relay(env, Direction::RecvOnly).await;
    campeer.log.wait_for("camera streaming", START_DEADLINE);
    (relay, campeer, viewer)
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
    in_vm();
    let mut aplay = play_tone(120);
    let (_relay, mut campeer, mut viewer) = watch_camera(&[
        ("CAMPEER__VIDEO__SOURCE", "/dev/video0"),
        ("CAMPEER__VIDEO__WIDTH", "640"),
        ("CAMPEER__VIDEO__HEIGHT", "360"),
        ("CAMPEER__VIDEO__FPS", "15"),
        ("CAMPEER__AUDIO__SOURCE", "hw:Loopback,1,0"),
    ])
    .await;
    let live = viewer.next_video(Duration::from_secs(10)).await;
    assert_eq!((live.width, live.height), (640, 360));
    assert_eq!(live.counter, None, "vivid's picture, not campeer's pattern");
    // RTP time moves forward with the camera's frames. (Against the viewer's clock it ran at
    // 55-105 kHz here: vivid's timestamps and the emulated scheduler both drift too much for
    // a rate check, so the rate is reported, not asserted.)
    let (t0, r0) = (live.at, live.rtp_time);
    let mut last = live.clone();
    while last.at.duration_since(t0) < Duration::from_secs(3) {
        let f = viewer.next_video(FRAME_WAIT).await;
        assert!(
            f.rtp_time.wrapping_sub(last.rtp_time) < 90_000,
            "RTP time moves forward"
        );
        last = f;
    }
    let rate = f64::from(last.rtp_time.wrapping_sub(r0)) / last.at.duration_since(t0).as_secs_f64();
    eprintln!("RTP clock against the viewer's wall clock: {rate:.0} Hz");
    let hz = viewer.tone_hz(FRAME_WAIT).await;
    eprintln!("tone through snd-aloop decoded at {hz:.1} Hz");
    assert!((hz - 1000.0).abs() < 10.0, "{hz} Hz");

    // An overrun, for real: campeer stopped for longer than its 80 ms ALSA buffer, while
    // snd-aloop goes on capturing in real time. It must recover, and the tone go on.
    let pid = libc::pid_t::try_from(campeer.pid()).unwrap();
    // SAFETY: signals to the campeer process this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::kill(pid, libc::SIGCONT) };
    campeer
        .log
        .wait_for("microphone overrun recovered", Duration::from_secs(10));
    while viewer.seen.try_recv().is_ok() {} // what was heard before the recovery
    let hz = viewer.tone_hz(FRAME_WAIT).await;
    eprintln!("after an overrun, the tone decoded at {hz:.1} Hz");
    assert!((hz - 1000.0).abs() < 10.0, "after the overrun: {hz} Hz");

    // Unplug: vivid's USB-disconnect emulation fails campeer's stream with ENODEV; campeer
    // closes the device at once and sends "no signal" for a second before it retries,
    // which is the moment the module can go (tried every 100 ms from here). Under a busy
    // host the emulated rmmod can miss that second (campeer reopened the still-present
    // node first, 2026-12-02): then the camera is unplugged again, up to three times.
    let disconnect = || {
        Command::new("v4l2-ctl")
            .args(["-d", "/dev/video0", "-c", "disconnect=1"])
            .status()
            .unwrap()
            .success()
    };
    assert!(disconnect(), "v4l2-ctl disconnect");
    let unplug = std::thread::spawn(move || {
        for round in 0..3 {
            if round > 0 && !disconnect() {
                continue;
            }
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
                // Not faster: each try is a process start, costly under emulation.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        false
    });
    let grey = viewer
        .expect(CAMERA_CHANGE_WAIT, |s| match s {
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
    let away = viewer.next_video(FRAME_WAIT).await;
    assert!(away.counter.is_some(), "no signal while unplugged");

    // Replug: live frames again after the device's return.
    modprobe(&["vivid", "n_devs=1", "node_types=0x1"]);
    let back = Instant::now();
    let again = viewer.expect(CAMERA_CHANGE_WAIT, live_frame).await;
    // Measured 0.6-2.2 s here, once 6.2 s with the host busy: under emulation the time is
    // reported (BENCHMARKS.md), never asserted.
    let took = again.at.saturating_duration_since(back);
    eprintln!("live frames again {took:?} after modprobe");
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
        let f = viewer.next_video(FRAME_WAIT).await;
        assert_eq!(
            f.counter, None,
            "live frames while 30 % of buffers are dropped"
        );
    }
    ctl("percentage_of_dropped_buffers=0");
    // An injected QBUF error fails the stream: campeer reopens the camera, and live
    // frames follow.
    let opened = campeer.log.count("camera streaming");
    ctl("inject_vidioc_qbuf_error=1");
    campeer
        .log
        .wait_for_n("camera streaming", opened + 1, CAMERA_CHANGE_WAIT);
    while viewer.seen.try_recv().is_ok() {} // what was decoded before the reopen
    viewer.expect(CAMERA_CHANGE_WAIT, live_frame).await;

    viewer.hang_up().await;
    assert!(campeer.terminate().success());
    let _ = aplay.kill();
    let _ = aplay.wait();
}

/// The output side of a v4l2loopback node, streamed through mmap buffers so that each
/// frame carries the timestamp the test gives it (write() would stamp the time of writing).
struct LoopbackOutput {
    dev: v4l::Device,
    buffers: Vec<(*mut u8, usize)>,
    queued: usize,
}

impl LoopbackOutput {
    fn open(node: &str, width: u32, height: u32) -> Self {
        use v4l::v4l_sys::{v4l2_buffer, v4l2_requestbuffers};
        use v4l::v4l2::{self, vidioc};
        use v4l::video::Output;

        let dev = v4l::Device::with_path(node).unwrap();
        Output::set_format(
            &dev,
            &v4l::Format::new(width, height, v4l::FourCC::new(b"YU12")),
        )
        .unwrap();
        let fd = dev.handle().fd();
        // SAFETY: plain V4L2 ioctls on an open fd with structs of the kernel's layout; the
        // mappings live as long as `dev` (never unmapped before the process ends).
        let buffers = unsafe {
            let mut req: v4l2_requestbuffers = std::mem::zeroed();
            req.count = 4;
            req.type_ = OUTPUT;
            req.memory = MMAP;
            v4l2::ioctl(fd, vidioc::VIDIOC_REQBUFS, (&raw mut req).cast()).unwrap();
            (0..req.count)
                .map(|index| {
                    let mut buf: v4l2_buffer = std::mem::zeroed();
                    (buf.index, buf.type_, buf.memory) = (index, OUTPUT, MMAP);
                    v4l2::ioctl(fd, vidioc::VIDIOC_QUERYBUF, (&raw mut buf).cast()).unwrap();
                    let len = buf.length as usize;
                    let ptr = v4l2::mmap(
                        std::ptr::null_mut(),
                        len,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_SHARED,
                        fd,
                        buf.m.offset as libc::off_t,
                    )
                    .unwrap();
                    (ptr.cast::<u8>(), len)
                })
                .collect()
        };
        Self {
            dev,
            buffers,
            queued: 0,
        }
    }

    /// Queues `frame` stamped `at` (CLOCK_MONOTONIC time, as drivers stamp).
    fn write(&mut self, frame: &I420Frame, at: Duration) {
        use v4l::v4l_sys::v4l2_buffer;
        use v4l::v4l2::{self, vidioc};

        let fd = self.dev.handle().fd();
        // SAFETY: as in `open`; a buffer is written only when the driver has handed it back.
        unsafe {
            let mut buf: v4l2_buffer = std::mem::zeroed();
            (buf.type_, buf.memory) = (OUTPUT, MMAP);
            if self.queued < self.buffers.len() {
                buf.index = self.queued as u32;
            } else {
                v4l2::ioctl(fd, vidioc::VIDIOC_DQBUF, (&raw mut buf).cast()).unwrap();
            }
            let (ptr, len) = self.buffers[buf.index as usize];
            assert!(frame.data().len() <= len, "frame fits the loopback buffer");
            std::ptr::copy_nonoverlapping(frame.data().as_ptr(), ptr, frame.data().len());
            buf.bytesused = frame.data().len() as u32;
            buf.timestamp.tv_sec = at.as_secs() as _;
            buf.timestamp.tv_usec = at.subsec_micros() as _;
            v4l2::ioctl(fd, vidioc::VIDIOC_QBUF, (&raw mut buf).cast()).unwrap();
            if self.queued == 0 {
                let mut kind = OUTPUT;
                v4l2::ioctl(fd, vidioc::VIDIOC_STREAMON, (&raw mut kind).cast()).unwrap();
            }
        }
        self.queued += 1;
    }
}

const OUTPUT: u32 = 2; // V4L2_BUF_TYPE_VIDEO_OUTPUT
const MMAP: u32 = 1; // V4L2_MEMORY_MMAP

/// The timestamp the test gives frame `n`: 40 ms apart on average, but never evenly
/// (49, 49, 49, 13 ms), while frames are written every 40 ms of real time.
fn stamp(n: u32) -> Duration {
    Duration::from_secs(1000) + Duration::from_millis(u64::from(n) * 40 + u64::from(n % 4) * 9)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs v4l2loopback: scripts/vm-test"]
async fn rtp_time_is_the_drivers_buffer_time() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    in_vm();
    // The writer thread and campeer's config both borrow it for the whole test.
    let node: &'static str = load_loopback_camera(11).leak();
    let (w, h) = (320, 240);

    // The writer: campeer's own numbered pattern, so the viewer can tell which frame it
    // decoded and so which timestamp that frame was written with.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut out = LoopbackOutput::open(node, w, h);
            let mut pattern = TestPattern::new(w, h);
            let mut frame = I420Frame::new(w, h);
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                pattern.draw(&mut frame, n, unix_ms(Instant::now()));
                out.write(&frame, stamp(n));
                n += 1;
                std::thread::sleep(Duration::from_millis(40));
            }
        })
    };
    // With exclusive_caps the node becomes a camera once the writer streams.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !describe(std::path::Path::new(node)).is_ok_and(|i| i.is_camera) {
        assert!(Instant::now() < deadline, "{node} never became a camera");
        std::thread::sleep(Duration::from_millis(50));
    }

    let (_relay, mut campeer, mut viewer) = watch_camera(&[
        ("CAMPEER__VIDEO__SOURCE", node),
        ("CAMPEER__VIDEO__FPS", "25"),
        ("CAMPEER__AUDIO__SOURCE", "none"),
    ])
    .await;

    let first = viewer.next_video(Duration::from_secs(10)).await;
    let n0 = first.counter.expect("the written pattern's number");
    let mut checked = 0;
    let mut worst = 0i64;
    while checked < 40 {
        let f = viewer.next_video(FRAME_WAIT).await;
        let n = f.counter.expect("the written pattern's number");
        let want = ((stamp(n) - stamp(n0)).as_micros() * 9 / 100) as i64;
        let got = i64::from(f.rtp_time.wrapping_sub(first.rtp_time));
        worst = worst.max((got - want).abs());
        assert!(
            (got - want).abs() <= 2,
            "frame {n}: RTP {got} ticks after frame {n0}, its timestamp says {want}"
        );
        checked += 1;
    }
    eprintln!("{checked} frames: RTP time = driver timestamp to within {worst} ticks of 90 kHz");

    viewer.hang_up().await;
    assert!(campeer.terminate().success());
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}
