//! campeer in the test process: the whole daemon (media pipeline on the test sources,
//! session loop, sessions) on a tokio runtime, its room the other end of a
//! [`DirectSignaller`]. No Node, no socket for signaling, and its tasks can be counted.

use std::net::{IpAddr, Ipv4Addr};

use campeer::config::{AudioSource, Config, Secret, VideoSource};
use campeer::signaling::direct::{DirectSignaller, RoomSide};
use tokio_util::sync::CancellationToken;

/// 160x120 at 300 kbit/s on the test sources, media bound to 127.0.0.1.
pub fn small_test_config() -> Config {
    let mut cfg = Config::default();
    cfg.video.source = VideoSource::Test;
    cfg.video.width = 160;
    cfg.video.height = 120;
    cfg.video.bitrate_kbps = 300;
    cfg.audio.source = AudioSource::Test;
    cfg.webrtc.bind = IpAddr::V4(Ipv4Addr::LOCALHOST);
    cfg.access.token = Some(Secret::new(super::TEST_TOKEN));
    cfg
}

pub struct InProcess {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcess {
    /// Starts campeer with [`small_test_config`] on the current runtime; returns it with
    /// its room.
    pub fn start() -> (Self, RoomSide) {
        // campeer's log, shown when a test fails.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,webrtc=warn,rtc=warn")
            .with_test_writer()
            .try_init();
        let (signaller, room) = DirectSignaller::new();
        let cancel = CancellationToken::new();
        let cfg = small_test_config();
        let access = campeer::access::Access::load(&cfg.access).expect("the test token");
        let task = tokio::spawn(campeer::daemon::serve(
            cfg,
            std::sync::Arc::new(access),
            signaller,
            cancel.clone(),
        ));
        (Self { cancel, task }, room)
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        self.task
            .await
            .expect("the daemon task")
            .expect("campeer stops cleanly");
    }
}
