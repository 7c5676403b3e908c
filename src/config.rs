//! Typed configuration: a TOML file, overridden key by key by `CAMPEER__SECTION__KEY`
//! environment variables, validated once at start so that a bad value stops the daemon
//! with a message naming the key instead of failing later on a device or a socket.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::media::video::vp8::MAX_TEMPORAL_LAYERS;

/// Where `campeer` looks for its file when `--config` is not given, in order.
pub const DEFAULT_PATHS: &[&str] = &["campeer.toml", "/etc/campeer/campeer.toml"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    Load {
        path: PathBuf,
        source: config::ConfigError,
    },
    #[error("configuration: {0}")]
    Parse(config::ConfigError),
    #[error("config key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// The whole effective configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
pub struct Config {
    pub signaling: SignalingConfig,
    pub video: VideoConfig,
    pub audio: AudioConfig,
    pub webrtc: WebrtcConfig,
    pub session: SessionConfig,
    pub access: AccessConfig,
    pub status: StatusConfig,
}

/// `GET /status` and `GET /metrics` (token required). The embedded server always serves
/// them; `listen` adds a plain-http listener of their own, the only way to reach them when
/// `signaling.url` points at an external relay. Unset (the default): no such listener.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusConfig {
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalingConfig {
    /// The Socket.IO relay, e.g. `http://127.0.0.1:3000`. Unset: campeer serves its own
    /// relay and viewer page on `listen`.
    pub url: Option<String>,
    pub room: RoomId,
    pub listen: std::net::SocketAddr,
    /// PEM certificates trusted for an `https`/`wss` relay besides the system's roots
    /// (a relay with a self-signed certificate, or a private CA).
    pub ca_file: Option<PathBuf>,
}

/// A room as the relay sees it: a bare JSON value whose type matters, because Socket.IO
/// puts `1` and `"1"` in different rooms.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RoomId(serde_json::Value);

impl RoomId {
    pub fn number(n: i64) -> Self {
        Self(n.into())
    }

    pub fn string(s: impl Into<String>) -> Self {
        Self(serde_json::Value::String(s.into()))
    }

    /// The value to put on the wire, with its JSON type.
    pub fn to_json(&self) -> serde_json::Value {
        self.0.clone()
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for RoomId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Str(String),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Int(n) => Self::number(n),
            // An environment variable cannot carry a type, so `'"1"'` (quoted) is how the
            // string room `"1"` is written there; unquoted digits are the number.
            Raw::Str(s) => match serde_json::from_str::<String>(&s) {
                Ok(inner) if s.starts_with('"') => Self::string(inner),
                _ => Self::string(s),
            },
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoSource {
    /// The first camera found, else the test pattern.
    Auto,
    Test,
    /// The test pattern under a camera's sensor noise: the encoder spends its whole
    /// bitrate, as on a real camera (congestion tests and benches).
    NoisyTest,
    Device(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioSource {
    /// The default capture PCM if there is one, else the tone.
    Auto,
    Test,
    None,
    Pcm(String),
}

macro_rules! source_serde {
    ($ty:ident, $other:ident($conv:expr), $($word:literal => $variant:ident),+) => {
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Self::$variant => s.serialize_str($word),)+
                    Self::$other(v) => s.collect_str(&$conv(v)),
                }
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok(match s.as_str() {
                    $($word => Self::$variant,)+
                    _ => Self::$other(s.into()),
                })
            }
        }
    };
}
source_serde!(VideoSource, Device(|p: &PathBuf| p.display().to_string()), "auto" => Auto, "test" => Test, "test-noisy" => NoisyTest);
source_serde!(AudioSource, Pcm(|p: &String| p.clone()), "auto" => Auto, "test" => Test, "none" => None);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VideoConfig {
    pub source: VideoSource,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// The encoder's bitrate before any viewer's path estimate, kept within
    /// `min_bitrate_kbps..=max_bitrate_kbps`.
    pub bitrate_kbps: u32,
    /// Congestion control never asks the encoder for less than this…
    pub min_bitrate_kbps: u32,
    /// …nor for more than this, however strong the best viewer's path.
    pub max_bitrate_kbps: u32,
    /// Frames between forced keyframes; a viewer that joins or loses packets asks for
    /// one sooner through PLI.
    pub keyframe_interval: u32,
    /// libvpx speed, -16..=16: a negative value is a fixed speed (higher: less CPU, less
    /// quality); a positive one lets libvpx slow down until a frame takes up to
    /// (16 - value)/16 of the frame interval. `"auto"`: libwebrtc's fixed speed for the
    /// picture size and this machine.
    pub cpu_used: EncoderSpeed,
    /// libvpx worker threads, or `"auto"`: by picture size and cores.
    pub threads: EncoderThreads,
    /// VP8 temporal layers, 1 or 2: with 2, a viewer on a thin link is sent the base
    /// layer (half the frames) alone.
    pub temporal_layers: u8,
}

/// A number, or `"auto"`: campeer picks it for the picture size and this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrAuto<T> {
    Auto,
    Set(T),
}

/// `video.threads`: libvpx worker threads.
pub type EncoderThreads = OrAuto<u32>;

/// `video.cpu_used`: libvpx's speed.
pub type EncoderSpeed = OrAuto<i32>;

impl<T: Serialize> Serialize for OrAuto<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Auto => s.serialize_str("auto"),
            Self::Set(n) => n.serialize(s),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OrAuto<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw<T> {
            Set(T),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Set(n) => Ok(Self::Set(n)),
            Raw::Word(w) if w == "auto" => Ok(Self::Auto),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "{w:?}: a number or \"auto\""
            ))),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AudioConfig {
    pub source: AudioSource,
    pub bitrate_kbps: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebrtcConfig {
    pub ice_servers: Vec<IceServer>,
    /// Local address the media sockets bind; the unspecified address means every
    /// interface but loopback.
    pub bind: IpAddr,
    /// `[first, last]` UDP ports for media, for a firewall; absent means any port.
    pub udp_port_range: Option<[u16; 2]>,
    /// Viewers served at once; an offer beyond that is refused with a warning.
    pub max_sessions: usize,
}

/// What one viewer's session may take from the room before it plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Seconds a viewer has from its offer to a connection; then its slot is freed.
    pub handshake_timeout: Seconds,
    /// Remote candidates one session applies at most; the rest are refused and counted.
    pub max_remote_candidates: usize,
}

impl SessionConfig {
    /// The bounds of `session.handshake_timeout`: TURN from a phone can take 5 s; a slot
    /// held longer by a caller that never connects is a slot a flood can keep.
    const HANDSHAKE_SECONDS: std::ops::RangeInclusive<u64> = 2..=60;
    /// The bounds of `session.max_remote_candidates`: a browser gathers a handful per
    /// interface and ICE server.
    const REMOTE_CANDIDATES: std::ops::RangeInclusive<usize> = 1..=256;

    fn validate(&self) -> Result<(), ConfigError> {
        let (secs, range) = (self.handshake_timeout.0, Self::HANDSHAKE_SECONDS);
        if !range.contains(&secs) {
            return Err(invalid(
                "session.handshake_timeout",
                format!(
                    "{secs}: must be {}..={} seconds",
                    range.start(),
                    range.end()
                ),
            ));
        }
        let (n, range) = (self.max_remote_candidates, Self::REMOTE_CANDIDATES);
        if !range.contains(&n) {
            return Err(invalid(
                "session.max_remote_candidates",
                format!("{n}: must be {}..={}", range.start(), range.end()),
            ));
        }
        Ok(())
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            handshake_timeout: Seconds(10),
            max_remote_candidates: 32,
        }
    }
}

/// A whole number of seconds, as the config file writes durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seconds(pub u64);

impl Seconds {
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0)
    }
}

/// The most `webrtc.max_sessions` may say: each session is a PeerConnection with its own
/// sockets, DTLS and RTP, well past what a board's uplink carries long before this.
pub const MAX_SESSIONS: usize = 64;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub credential: Option<String>,
    /// PEM certificates trusted for this server's `turns:` URLs besides the system's
    /// roots (a TURN server with a self-signed certificate, or a private CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// A value that must not leak: `Debug` shows `<redacted>`; [`Secret::expose`] is the one
/// way to the text.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What `check-config` shows in place of a secret.
    fn redacted() -> Self {
        Self(crate::access::REDACTED.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::access::REDACTED)
    }
}

/// Who may watch: see `systemd/campeer.toml` for what each key means.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// The room's shared secret. Unset: generated at first start and kept in `state_dir`.
    pub token: Option<Secret>,
    /// Answer every offer, proof or not (the seed's own caller page cannot make one).
    pub open: bool,
    /// Origins allowed besides the one the embedded server serves, e.g. `https://a.example`.
    pub allowed_origins: Vec<String>,
    /// DTLS certificate fingerprints (`sha-256 AB:CD:…`); when set, only these may call.
    pub allowed_fingerprints: Vec<String>,
    pub tls: TlsMode,
    /// Where the generated token (and certificate) live. Unset: see
    /// [`crate::access::state_dir::resolve`].
    pub state_dir: Option<PathBuf>,
}

/// TLS for the embedded server: `"off"`, `"self-signed"` (made once, kept in the state
/// directory), or `{ cert = "…", key = "…" }` PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TlsMode {
    #[default]
    Off,
    SelfSigned,
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
}

impl TlsMode {
    pub fn is_on(&self) -> bool {
        *self != Self::Off
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum TlsModeRaw {
    Word(String),
    Files { cert: PathBuf, key: PathBuf },
}

impl Serialize for TlsMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Off => TlsModeRaw::Word("off".into()),
            Self::SelfSigned => TlsModeRaw::Word("self-signed".into()),
            Self::Files { cert, key } => TlsModeRaw::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for TlsMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = TlsModeRaw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "tls: expected \"off\", \"self-signed\" or { cert = \"…\", key = \"…\" }",
            )
        })?;
        match raw {
            TlsModeRaw::Word(w) if w == "off" => Ok(Self::Off),
            TlsModeRaw::Word(w) if w == "self-signed" => Ok(Self::SelfSigned),
            TlsModeRaw::Word(w) => Err(serde::de::Error::custom(format!(
                "tls: {w:?} is not \"off\", \"self-signed\" or {{ cert, key }}"
            ))),
            TlsModeRaw::Files { cert, key } => Ok(Self::Files { cert, key }),
        }
    }
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            token: None,
            open: false,
            allowed_origins: Vec::new(),
            allowed_fingerprints: Vec::new(),
            tls: TlsMode::Off,
            state_dir: None,
        }
    }
}

impl AccessConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(token) = &self.token {
            crate::access::token::Token::parse(token.expose())
                .map_err(|e| invalid("access.token", e.to_string()))?;
        }
        for origin in &self.allowed_origins {
            crate::access::origin::parse(origin)
                .map_err(|e| invalid("access.allowed_origins", format!("{origin:?}: {e}")))?;
        }
        for fp in &self.allowed_fingerprints {
            crate::access::Fingerprint::parse(fp)
                .map_err(|e| invalid("access.allowed_fingerprints", format!("{fp:?}: {e}")))?;
        }
        if let TlsMode::Files { cert, key } = &self.tls
            && (cert.as_os_str().is_empty() || key.as_os_str().is_empty())
        {
            return Err(invalid("access.tls", "cert and key must both be paths"));
        }
        if let Some(dir) = &self.state_dir
            && !dir.is_absolute()
        {
            return Err(invalid(
                "access.state_dir",
                format!("{}: must be an absolute path", dir.display()),
            ));
        }
        Ok(())
    }
}

impl Default for SignalingConfig {
    fn default() -> Self {
        Self {
            url: None,
            // The reference viewer page joins the number 1.
            room: RoomId::number(1),
            listen: std::net::SocketAddr::from(([0, 0, 0, 0], 3000)),
            ca_file: None,
        }
    }
}

impl Default for VideoConfig {
    fn default() -> Self {
        Self {
            source: VideoSource::Auto,
            width: 640,
            height: 480,
            fps: 30,
            bitrate_kbps: 1000,
            min_bitrate_kbps: 100,
            max_bitrate_kbps: 2500,
            keyframe_interval: 300,
            cpu_used: EncoderSpeed::Auto,
            threads: EncoderThreads::Auto,
            temporal_layers: 2,
        }
    }
}

impl VideoConfig {
    /// `bitrate_kbps` within the bounds: a config written before the bounds existed (its
    /// bitrate then fixed) keeps working, its bitrate now the start.
    pub fn start_bitrate_kbps(&self) -> u32 {
        self.bitrate_kbps.clamp(
            self.min_bitrate_kbps,
            self.max_bitrate_kbps.max(self.min_bitrate_kbps),
        )
    }
}

impl Default for AudioConfig {
    fn default() -> Self {
        Self {
            source: AudioSource::Auto,
            bitrate_kbps: 32,
        }
    }
}

impl Default for WebrtcConfig {
    fn default() -> Self {
        Self {
            ice_servers: Vec::new(),
            bind: IpAddr::from([0, 0, 0, 0]),
            udp_port_range: None,
            max_sessions: 8,
        }
    }
}

impl Config {
    /// Loads `path` (or the first of [`DEFAULT_PATHS`] that exists, or nothing), applies
    /// the `CAMPEER__` environment, and validates. Returns the file actually read.
    pub fn load(path: Option<&Path>) -> Result<(Self, Option<PathBuf>), ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// As [`Config::load`], with the environment passed in so tests need not mutate the
    /// process environment.
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Self, Option<PathBuf>), ConfigError> {
        let file = match path {
            Some(p) => Some(p.to_path_buf()),
            None => DEFAULT_PATHS
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file()),
        };
        let mut builder = config::Config::builder();
        if let Some(f) = &file {
            builder = builder.add_source(
                config::File::from(f.as_path())
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("CAMPEER__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("CAMPEER")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("webrtc.udp_port_range")
                .try_parsing(true)
                .source(Some(env)),
        );
        let built = builder.build().map_err(|e| match &file {
            Some(p) => ConfigError::Load {
                path: p.clone(),
                source: e,
            },
            None => ConfigError::Parse(e),
        })?;
        let cfg: Config = built.try_deserialize().map_err(|e| match &file {
            Some(p) => ConfigError::Load {
                path: p.clone(),
                source: e,
            },
            None => ConfigError::Parse(e),
        })?;
        cfg.validate()?;
        Ok((cfg, file))
    }

    /// Refuses values no camera, encoder or socket could honour.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.signaling.url {
            let parsed = url::Url::parse(url)
                .map_err(|e| invalid("signaling.url", format!("{url:?}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https" | "ws" | "wss") {
                return Err(invalid(
                    "signaling.url",
                    format!("{url:?}: scheme must be http, https, ws or wss"),
                ));
            }
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(invalid("signaling.url", format!("{url:?}: no host")));
            }
        }
        if let Some(ca) = &self.signaling.ca_file {
            let secure = self.signaling.url.as_deref().is_some_and(|u| {
                url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "https" | "wss"))
            });
            if !secure {
                return Err(invalid(
                    "signaling.ca_file",
                    format!(
                        "{}: only for an https or wss signaling.url, which is not set",
                        ca.display()
                    ),
                ));
            }
        }
        match &self.signaling.room.0 {
            serde_json::Value::String(s) if s.is_empty() => {
                return Err(invalid("signaling.room", "must not be empty"));
            }
            _ => {}
        }
        let v = &self.video;
        // VP8 and I420 chroma subsampling need even sizes; 4096 is VP8's practical limit.
        for (key, val) in [("video.width", v.width), ("video.height", v.height)] {
            if val == 0 || val > 4096 || val % 2 != 0 {
                return Err(invalid(key, format!("{val}: must be even and 2..=4096")));
            }
        }
        if !(1..=120).contains(&v.fps) {
            return Err(invalid("video.fps", format!("{}: must be 1..=120", v.fps)));
        }
        for (key, val) in [
            ("video.bitrate_kbps", v.bitrate_kbps),
            ("video.min_bitrate_kbps", v.min_bitrate_kbps),
            ("video.max_bitrate_kbps", v.max_bitrate_kbps),
        ] {
            if !(50..=50_000).contains(&val) {
                return Err(invalid(key, format!("{val}: must be 50..=50000")));
            }
        }
        if v.min_bitrate_kbps > v.max_bitrate_kbps {
            return Err(invalid(
                "video.min_bitrate_kbps",
                format!(
                    "{}: must not exceed video.max_bitrate_kbps ({})",
                    v.min_bitrate_kbps, v.max_bitrate_kbps
                ),
            ));
        }
        if v.keyframe_interval == 0 {
            return Err(invalid(
                "video.keyframe_interval",
                "must be at least 1 frame",
            ));
        }
        if let EncoderSpeed::Set(n) = v.cpu_used
            && !(-16..=16).contains(&n)
        {
            return Err(invalid("video.cpu_used", format!("{n}: must be -16..=16")));
        }
        if let EncoderThreads::Set(n) = v.threads
            && !(1..=16).contains(&n)
        {
            return Err(invalid("video.threads", format!("{n}: must be 1..=16")));
        }
        if !(1..=MAX_TEMPORAL_LAYERS).contains(&v.temporal_layers) {
            return Err(invalid(
                "video.temporal_layers",
                format!("{}: must be 1..={MAX_TEMPORAL_LAYERS}", v.temporal_layers),
            ));
        }
        if let VideoSource::Device(p) = &v.source
            && p.as_os_str().is_empty()
        {
            return Err(invalid("video.source", "empty device path"));
        }
        if let AudioSource::Pcm(p) = &self.audio.source
            && p.is_empty()
        {
            return Err(invalid("audio.source", "empty PCM name"));
        }
        if !(6..=510).contains(&self.audio.bitrate_kbps) {
            return Err(invalid(
                "audio.bitrate_kbps",
                format!("{}: Opus takes 6..=510", self.audio.bitrate_kbps),
            ));
        }
        for server in &self.webrtc.ice_servers {
            if server.urls.is_empty() {
                return Err(invalid("webrtc.ice_servers", "an entry has no urls"));
            }
            let mut secure = false;
            for u in &server.urls {
                let reach = crate::turn::reach(u)
                    .map_err(|reason| invalid("webrtc.ice_servers", format!("{u:?}: {reason}")))?;
                if let crate::turn::Reach::Bridged(bridged) = &reach {
                    secure |= bridged.tls;
                    // The bridge hands webrtc-rs an IPv4 loopback address (src/turn).
                    if self.webrtc.bind.is_ipv6() {
                        return Err(invalid(
                            "webrtc.ice_servers",
                            format!(
                                "{u:?}: TURN over TCP or TLS needs an IPv4 webrtc.bind, not {}",
                                self.webrtc.bind
                            ),
                        ));
                    }
                }
                let scheme = u.split(':').next().unwrap_or_default();
                if scheme.starts_with("turn")
                    && (server.username.is_none() || server.credential.is_none())
                {
                    return Err(invalid(
                        "webrtc.ice_servers",
                        format!("{u:?}: a TURN server needs username and credential"),
                    ));
                }
            }
            if let Some(ca) = &server.ca_file
                && !secure
            {
                return Err(invalid(
                    "webrtc.ice_servers",
                    format!(
                        "ca_file {}: only for an entry with a turns: URL",
                        ca.display()
                    ),
                ));
            }
        }
        if let Some([first, last]) = self.webrtc.udp_port_range
            && (first == 0 || first > last)
        {
            return Err(invalid(
                "webrtc.udp_port_range",
                format!("[{first}, {last}]: must be [first, last] with 0 < first <= last"),
            ));
        }
        if !(1..=MAX_SESSIONS).contains(&self.webrtc.max_sessions) {
            return Err(invalid(
                "webrtc.max_sessions",
                format!("must be 1 to {MAX_SESSIONS}"),
            ));
        }
        self.session.validate()?;
        self.access.validate()?;
        // The embedded server on every interface is the whole LAN's; only the token
        // keeps it private.
        if self.access.open
            && self.signaling.url.is_none()
            && self.signaling.listen.ip().is_unspecified()
        {
            return Err(invalid(
                "signaling.listen",
                format!(
                    "{}: every interface with access.open = true serves anyone who can \
                     reach it; listen on one address (e.g. 127.0.0.1) or leave access.open off",
                    self.signaling.listen
                ),
            ));
        }
        Ok(())
    }

    /// This configuration with every secret replaced by `<redacted>`: the token, TURN
    /// credentials, and the userinfo of the signaling URL.
    pub fn redacted(&self) -> Self {
        let mut c = self.clone();
        c.signaling.url = c.signaling.url.map(|u| crate::access::redact::url(&u));
        if c.access.token.is_some() {
            c.access.token = Some(Secret::redacted());
        }
        for server in &mut c.webrtc.ice_servers {
            if server.credential.is_some() {
                server.credential = Some(crate::access::REDACTED.to_owned());
            }
        }
        c
    }

    /// The effective configuration as TOML, secrets redacted, for `check-config`.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(&self.redacted()).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    fn load_str(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut f = tempfile::NamedTempFile::with_suffix(".toml").expect("temp file");
        f.write_all(toml.as_bytes()).expect("write temp file");
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load_with_env(Some(f.path()), env).map(|(c, _)| c)
    }

    fn err(toml: &str, env: &[(&str, &str)]) -> String {
        load_str(toml, env)
            .expect_err("must be refused")
            .to_string()
    }

    #[test]
    fn defaults_are_valid() {
        let c = load_str("", &[]).unwrap();
        assert_eq!(c.video.width, 640);
        assert_eq!(c.signaling.room, RoomId::number(1));
        assert_eq!(c.video.source, VideoSource::Auto);
    }

    #[test]
    fn room_keeps_its_json_type() {
        let c = load_str("[signaling]\nroom = 1\n", &[]).unwrap();
        assert_eq!(c.signaling.room.to_json(), serde_json::json!(1));
        let c = load_str("[signaling]\nroom = \"1\"\n", &[]).unwrap();
        assert_eq!(c.signaling.room.to_json(), serde_json::json!("1"));
        let c = load_str("", &[("CAMPEER__SIGNALING__ROOM", "7")]).unwrap();
        assert_eq!(c.signaling.room.to_json(), serde_json::json!(7));
        let c = load_str("", &[("CAMPEER__SIGNALING__ROOM", "\"7\"")]).unwrap();
        assert_eq!(c.signaling.room.to_json(), serde_json::json!("7"));
        let c = load_str("", &[("CAMPEER__SIGNALING__ROOM", "lobby")]).unwrap();
        assert_eq!(c.signaling.room.to_json(), serde_json::json!("lobby"));
    }

    #[test]
    fn environment_overrides_file() {
        let c = load_str(
            "[video]\nwidth = 320\nheight = 240\n",
            &[
                ("CAMPEER__VIDEO__WIDTH", "1280"),
                ("CAMPEER__VIDEO__HEIGHT", "720"),
                ("CAMPEER__SIGNALING__URL", "http://127.0.0.1:3000"),
                ("CAMPEER__VIDEO__SOURCE", "test"),
                ("CAMPEER__AUDIO__SOURCE", "hw:1,0"),
                ("CAMPEER__WEBRTC__UDP_PORT_RANGE", "50000,50100"),
            ],
        )
        .unwrap();
        assert_eq!((c.video.width, c.video.height), (1280, 720));
        assert_eq!(c.signaling.url.as_deref(), Some("http://127.0.0.1:3000"));
        assert_eq!(c.video.source, VideoSource::Test);
        assert_eq!(c.audio.source, AudioSource::Pcm("hw:1,0".into()));
        assert_eq!(c.webrtc.udp_port_range, Some([50000, 50100]));
    }

    #[test]
    fn temporal_layers_are_one_or_two() {
        assert_eq!(load_str("", &[]).unwrap().video.temporal_layers, 2);
        let one = load_str("[video]\ntemporal_layers = 1\n", &[]).unwrap();
        assert_eq!(one.video.temporal_layers, 1);
        for bad in [0, 3] {
            let e = load_str(&format!("[video]\ntemporal_layers = {bad}\n"), &[]).unwrap_err();
            assert!(e.to_string().contains("video.temporal_layers"), "{e}");
        }
    }

    #[test]
    fn video_threads_is_a_count_or_auto() {
        assert_eq!(
            load_str("", &[]).unwrap().video.threads,
            EncoderThreads::Auto
        );
        let c = load_str("[video]\nthreads = 3\n", &[]).unwrap();
        assert_eq!(c.video.threads, EncoderThreads::Set(3));
        let c = load_str("", &[("CAMPEER__VIDEO__THREADS", "1")]).unwrap();
        assert_eq!(c.video.threads, EncoderThreads::Set(1));
        let c = load_str(
            "[video]\nthreads = 2\n",
            &[("CAMPEER__VIDEO__THREADS", "auto")],
        );
        assert_eq!(c.unwrap().video.threads, EncoderThreads::Auto);
        assert!(err("[video]\nthreads = 0\n", &[]).contains("video.threads"));
        assert!(err("[video]\nthreads = \"many\"\n", &[]).contains("many"));
    }

    #[test]
    fn video_cpu_used_is_a_speed_or_auto() {
        assert_eq!(
            load_str("", &[]).unwrap().video.cpu_used,
            EncoderSpeed::Auto
        );
        let c = load_str("[video]\ncpu_used = 8\n", &[]).unwrap();
        assert_eq!(c.video.cpu_used, EncoderSpeed::Set(8));
        let c = load_str("", &[("CAMPEER__VIDEO__CPU_USED", "-6")]).unwrap();
        assert_eq!(c.video.cpu_used, EncoderSpeed::Set(-6));
        let c = load_str(
            "[video]\ncpu_used = -12\n",
            &[("CAMPEER__VIDEO__CPU_USED", "auto")],
        );
        assert_eq!(c.unwrap().video.cpu_used, EncoderSpeed::Auto);
        for bad in ["17", "-17"] {
            assert!(err(&format!("[video]\ncpu_used = {bad}\n"), &[]).contains("video.cpu_used"));
        }
        assert!(err("[video]\ncpu_used = \"fast\"\n", &[]).contains("fast"));
    }

    #[test]
    fn refusals_name_the_key() {
        assert!(err("[video]\nwidth = 0\n", &[]).contains("video.width"));
        assert!(err("[video]\nfps = 500\n", &[]).contains("video.fps"));
        assert!(err("[signaling]\nurl = \"not a url\"\n", &[]).contains("signaling.url"));
        assert!(err("[signaling]\nurl = \"ftp://x\"\n", &[]).contains("signaling.url"));
        assert!(err("[audio]\nbitrate_kbps = 1\n", &[]).contains("audio.bitrate_kbps"));
        assert!(
            err("[webrtc]\nice_servers = [{ urls = [\"http://x\"] }]\n", &[])
                .contains("webrtc.ice_servers")
        );
        assert!(
            err(
                "[webrtc]\nice_servers = [{ urls = [\"turn:x:3478\"] }]\n",
                &[]
            )
            .contains("username")
        );
        assert!(err("[webrtc]\nudp_port_range = [5, 1]\n", &[]).contains("udp_port_range"));
    }

    /// One `webrtc.ice_servers` entry with `urls`, TURN credentials and `extra` keys.
    fn ice_server(urls: &str, extra: &str) -> String {
        format!(
            "[webrtc]\nice_servers = [{{ urls = [{urls}], username = \"u\", credential = \"c\"{extra} }}]\n"
        )
    }

    #[test]
    fn turn_over_tcp_and_tls_is_taken_and_stun_over_them_is_not() {
        for bridged in [
            "\"turns:x:5349\"",
            "\"turn:x:3478?transport=tcp\"",
            "\"turns:x\"",
        ] {
            assert!(load_str(&ice_server(bridged, ""), &[]).is_ok(), "{bridged}");
        }
        let ca = ", ca_file = \"/etc/turn-ca.pem\"";
        let c = load_str(&ice_server("\"turns:x\", \"turn:x\"", ca), &[]).unwrap();
        assert_eq!(
            c.webrtc.ice_servers[0].ca_file.as_deref(),
            Some(std::path::Path::new("/etc/turn-ca.pem"))
        );
        let e = err(&ice_server("\"turn:x?transport=tcp\"", ca), &[]);
        assert!(e.contains("ca_file") && e.contains("turns:"), "{e}");
        for udp_only in ["\"stuns:x:5349\"", "\"stun:x?transport=tcp\""] {
            let e = err(&ice_server(udp_only, ""), &[]);
            assert!(
                e.contains("webrtc.ice_servers") && e.contains("UDP media socket"),
                "{e}"
            );
        }
        let e = err(&ice_server("\"turns:x?transport=udp\"", ""), &[]);
        assert!(e.contains("DTLS"), "{e}");
        let ipv6 = format!("{}bind = \"::\"\n", ice_server("\"turns:x\"", ""));
        assert!(err(&ipv6, &[]).contains("IPv4 webrtc.bind"));
    }

    #[test]
    fn a_signaling_ca_file_is_only_for_a_secure_relay() {
        let ca_for_http = "[signaling]\nurl = \"http://relay:3000\"\nca_file = \"/etc/ca.pem\"\n";
        assert!(err(ca_for_http, &[]).contains("signaling.ca_file"));
        let ca_for_https = "[signaling]\nurl = \"https://relay:3000\"\nca_file = \"/etc/ca.pem\"\n";
        assert!(load_str(ca_for_https, &[]).is_ok());
    }

    #[test]
    fn an_old_fixed_bitrate_becomes_the_start_within_the_bounds() {
        let c = load_str("[video]\nbitrate_kbps = 600\n", &[]).unwrap();
        assert_eq!(c.video.start_bitrate_kbps(), 600);
        let c = load_str("[video]\nbitrate_kbps = 8000\n", &[]).unwrap();
        assert_eq!(c.video.start_bitrate_kbps(), c.video.max_bitrate_kbps);
        let c = load_str("[video]\nbitrate_kbps = 60\n", &[]).unwrap();
        assert_eq!(c.video.start_bitrate_kbps(), c.video.min_bitrate_kbps);
        let e = err(
            "[video]\nmin_bitrate_kbps = 900\nmax_bitrate_kbps = 800\n",
            &[],
        );
        assert!(e.contains("video.min_bitrate_kbps"), "{e}");
        assert!(err("[video]\nmax_bitrate_kbps = 1\n", &[]).contains("video.max_bitrate_kbps"));
    }

    #[test]
    fn max_sessions_is_bounded_both_ways() {
        assert!(err("[webrtc]\nmax_sessions = 0\n", &[]).contains("webrtc.max_sessions"));
        let e = err("[webrtc]\nmax_sessions = 100000\n", &[]);
        assert!(e.contains("webrtc.max_sessions") && e.contains("64"), "{e}");
        assert!(load_str("[webrtc]\nmax_sessions = 64\n", &[]).is_ok());
    }

    #[test]
    fn session_limits_are_bounded_and_refusals_name_the_key() {
        let c = load_str("", &[]).unwrap();
        assert_eq!(
            c.session.handshake_timeout.duration(),
            Duration::from_secs(10)
        );
        assert_eq!(c.session.max_remote_candidates, 32);
        let c = load_str(
            "[session]\nhandshake_timeout = 20\n",
            &[("CAMPEER__SESSION__MAX_REMOTE_CANDIDATES", "8")],
        )
        .unwrap();
        assert_eq!(c.session.handshake_timeout, Seconds(20));
        assert_eq!(c.session.max_remote_candidates, 8);
        for bad in ["0", "1", "61", "\"10s\""] {
            let e = err(&format!("[session]\nhandshake_timeout = {bad}\n"), &[]);
            assert!(e.contains("handshake_timeout"), "{bad}: {e}");
        }
        for bad in ["0", "257", "-1"] {
            let e = err(&format!("[session]\nmax_remote_candidates = {bad}\n"), &[]);
            assert!(e.contains("max_remote_candidates"), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused() {
        let e = err("[video]\nwidht = 3\n", &[]);
        assert!(e.contains("widht"), "{e}");
        let e = err("[video]\nwidth = \"wide\"\n", &[]);
        assert!(e.contains("width"), "{e}");
        let e = err("", &[("CAMPEER__VIDEO__BOGUS", "1")]);
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn the_example_config_is_valid_and_says_what_the_defaults_say() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/campeer.toml");
        let (c, _) = Config::load_with_env(Some(&path), []).unwrap();
        // Installed as is, the service serves its own page: no value differs from the defaults.
        assert_eq!(c.to_toml(), Config::default().to_toml());
    }

    #[test]
    fn access_is_closed_by_default() {
        let c = load_str("", &[]).unwrap();
        assert!(!c.access.open);
        assert!(c.access.token.is_none());
        assert_eq!(c.access.tls, TlsMode::Off);
    }

    #[test]
    fn tls_takes_a_word_or_a_certificate_and_key() {
        let c = load_str("[access]\ntls = \"self-signed\"\n", &[]).unwrap();
        assert_eq!(c.access.tls, TlsMode::SelfSigned);
        let c = load_str("", &[("CAMPEER__ACCESS__TLS", "self-signed")]).unwrap();
        assert_eq!(c.access.tls, TlsMode::SelfSigned);
        let c = load_str(
            "[access]\ntls = { cert = \"/etc/c.pem\", key = \"/etc/k.pem\" }\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            c.access.tls,
            TlsMode::Files {
                cert: "/etc/c.pem".into(),
                key: "/etc/k.pem".into()
            }
        );
        let again = load_str(&c.to_toml(), &[]).unwrap();
        assert_eq!(again.access.tls, c.access.tls);
        let e = err("[access]\ntls = \"on\"\n", &[]);
        assert!(e.contains("tls"), "{e}");
    }

    #[test]
    fn access_refusals_name_the_key() {
        assert!(err("[access]\ntoken = \"short\"\n", &[]).contains("access.token"));
        assert!(
            err("[access]\nallowed_origins = [\"example.org\"]\n", &[])
                .contains("access.allowed_origins")
        );
        assert!(
            err("[access]\nallowed_fingerprints = [\"AB:CD\"]\n", &[])
                .contains("access.allowed_fingerprints")
        );
        assert!(err("[access]\nstate_dir = \"rel\"\n", &[]).contains("access.state_dir"));
        assert!(err("[access]\nopne = true\n", &[]).contains("opne"));
        assert!(err("[access]\nopen = true\n", &[]).contains("signaling.listen"));
        let open_on_loopback = "[access]\nopen = true\n[signaling]\nlisten = \"127.0.0.1:3000\"\n";
        assert!(load_str(open_on_loopback, &[]).is_ok());
        let open_on_a_relay = "[access]\nopen = true\n[signaling]\nurl = \"http://relay:3000\"\n";
        assert!(load_str(open_on_a_relay, &[]).is_ok());
    }

    #[test]
    fn a_bad_token_is_refused_without_echoing_it() {
        let e = err("[access]\ntoken = \"secret with spaces\"\n", &[]);
        assert!(e.contains("access.token") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn rendered_config_shows_no_secret() {
        let c = load_str(
            "[signaling]\nurl = \"https://cam:relaypass@relay.example.org:3000/\"\n\
             [access]\ntoken = \"tokensecret-0123456789\"\n\
             [webrtc]\nice_servers = [{ urls = [\"turn:t.example.org\"], username = \"cam\", credential = \"turnpass\" }]\n",
            &[],
        )
        .unwrap();
        let text = c.to_toml();
        for secret in ["relaypass", "tokensecret", "turnpass"] {
            assert!(!text.contains(secret), "{secret} in:\n{text}");
        }
        assert!(text.contains("relay.example.org:3000"), "{text}");
        assert!(text.contains(crate::access::REDACTED), "{text}");
        let debug = format!("{:?}", c.access);
        assert!(!debug.contains("tokensecret"), "{debug}");
        // The live configuration keeps the real values.
        assert_eq!(
            c.access.token.as_ref().map(Secret::expose),
            Some("tokensecret-0123456789")
        );
    }

    #[test]
    fn missing_named_file_is_an_error_naming_it() {
        let e = Config::load_with_env(Some(Path::new("/nonexistent/campeer.toml")), [])
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/campeer.toml"), "{e}");
    }

    #[test]
    fn effective_config_round_trips_through_toml() {
        let c = load_str(
            "[signaling]\nroom = \"a\"\n[audio]\nsource = \"none\"\n",
            &[],
        )
        .unwrap();
        let again = load_str(&c.to_toml(), &[]).unwrap();
        assert_eq!(again.signaling.room, RoomId::string("a"));
        assert_eq!(again.audio.source, AudioSource::None);
    }
}
