use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

use campeer::cli::{Cli, Command};
use campeer::config::Config;
use campeer::log_limit::{REPEAT_INTERVAL, RepeatLimit};

fn main() -> ExitCode {
    campeer::heap::bound();
    let cli = Cli::parse();
    let filter = cli
        .log
        .as_deref()
        .map(EnvFilter::try_new)
        .unwrap_or_else(|| {
            EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new("info"))
        });
    let filter = match filter {
        Ok(f) => f,
        Err(e) => {
            eprintln!("campeer: bad log filter: {e}");
            return ExitCode::from(2);
        }
    };
    let repeats = RepeatLimit::new(REPEAT_INTERVAL);
    tracing_subscriber::registry()
        .with(filter)
        .with(repeats.clone())
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    let result = run(cli, repeats.clone());
    repeats.flush_all();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("campeer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, repeats: RepeatLimit) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Run) {
        Command::Devices { json } => devices(json),
        Command::Url { no_qr } => viewer_url(cli.config.as_deref(), no_qr),
        Command::CheckConfig => {
            let (config, file) = Config::load(cli.config.as_deref())?;
            match &file {
                Some(f) => println!(
                    "# configuration OK: {} + CAMPEER__ environment",
                    f.display()
                ),
                None => println!("# configuration OK: defaults + CAMPEER__ environment (no file)"),
            }
            print!("{}", config.to_toml());
            Ok(())
        }
        Command::Run => {
            let (config, file) = Config::load(cli.config.as_deref())?;
            match &file {
                Some(f) => tracing::info!(file = %f.display(), "configuration loaded"),
                None => tracing::info!("no config file; defaults and CAMPEER__ environment"),
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("campeer-async")
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(async {
                let cancel = CancellationToken::new();
                tokio::spawn(shutdown_on_signal(cancel.clone()));
                tokio::spawn(repeats.flush_every(REPEAT_INTERVAL));
                campeer::daemon::run(config, cancel).await
            })
        }
    }
}

fn viewer_url(config: Option<&std::path::Path>, no_qr: bool) -> anyhow::Result<()> {
    let (config, _) = Config::load(config)?;
    let access = campeer::access::Access::load(&config.access)?;
    let host = campeer::access::viewer_url::hostname().unwrap_or_else(|| "localhost".into());
    let url = campeer::access::viewer_url::viewer_url(&config, access.token(), &host);
    println!("{}", url.expose());
    if let Some(identity) = campeer::access::tls::TlsIdentity::for_access(&config.access, &host)? {
        // What the browser's certificate warning should show, to compare before accepting.
        eprintln!("TLS certificate: {}", identity.fingerprint());
    }
    if !no_qr
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
        && let Some(qr) = url.qr_code()
    {
        println!("{qr}");
    }
    Ok(())
}

fn devices(json: bool) -> anyhow::Result<()> {
    let inventory = campeer::media::devices::Inventory::probe();
    if json {
        println!("{}", serde_json::to_string_pretty(&inventory)?);
    } else {
        print!("{}", inventory.to_table());
    }
    Ok(())
}

/// SIGINT or SIGTERM cancels the one token everything listens to.
async fn shutdown_on_signal(cancel: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
    cancel.cancel();
}
