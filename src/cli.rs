//! The command line: `campeer [run]`, `check-config`, `devices` and `url`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "campeer", version, about = "A camera board as a WebRTC peer")]
pub struct Cli {
    /// Config file (TOML). Default: ./campeer.toml, then /etc/campeer/campeer.toml.
    #[arg(long, short, global = true, env = "CAMPEER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log filter, e.g. `info`, `debug`, `campeer=debug,webrtc=warn`. Overrides RUST_LOG.
    #[arg(long, global = true)]
    pub log: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon until SIGINT or SIGTERM (the default).
    Run,
    /// Validate the configuration and print the effective result.
    CheckConfig,
    /// Print the viewer URL with its token (made now if none exists yet), and a QR code
    /// when the output is a terminal.
    Url {
        /// Only the URL, even on a terminal.
        #[arg(long)]
        no_qr: bool,
    },
    /// List cameras (formats, sizes, rates), sound cards and capture PCMs.
    Devices {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}
