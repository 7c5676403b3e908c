//! `systemd/campeer.service` passes `systemd-analyze verify`, `systemd-analyze security`
//! rates its exposure low, and it bounds what a flood can take (files, memory, tasks).
//! ExecStart is pointed at this build's binary, since verify checks that the command
//! exists. The Debian package installs the config, which may hold secrets, 0640.

use std::path::Path;
use std::process::Command;

fn unit_for_this_build(dir: &Path) -> std::path::PathBuf {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/campeer.service"),
    )
    .expect("systemd/campeer.service");
    assert!(
        unit.contains("ExecStart=/usr/bin/campeer "),
        "installed path"
    );
    let path = dir.join("campeer.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/campeer", env!("CARGO_BIN_EXE_campeer")),
    )
    .unwrap();
    path
}

#[test]
fn unit_verifies_and_exposure_is_low() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(dir.path());
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze");
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );

    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze");
    let text = String::from_utf8_lossy(&security.stdout);
    let level: f64 = text
        .lines()
        .find_map(|l| l.split("exposure level for campeer.service:").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    eprintln!("systemd-analyze security: exposure {level}");
    assert!(level <= 2.0, "exposure {level}:\n{text}");
}

#[test]
fn unit_bounds_files_memory_and_tasks() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/campeer.service"),
    )
    .expect("systemd/campeer.service");
    for key in ["LimitNOFILE=", "MemoryMax=", "TasksMax="] {
        assert!(
            unit.lines().any(|l| l.starts_with(key)),
            "the unit sets {key}"
        );
    }
}

#[test]
fn package_installs_the_config_readable_by_root_and_group_only() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .expect("Cargo.toml");
    let manifest: toml::Table = toml::from_str(&text).expect("Cargo.toml parses");
    let assets = manifest["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .expect("cargo-deb assets");
    let config = assets
        .iter()
        .filter_map(toml::Value::as_array)
        .find(|a| a.first().and_then(toml::Value::as_str) == Some("systemd/campeer.toml"))
        .expect("the example config is packaged");
    assert_eq!(config[1].as_str(), Some("etc/campeer/campeer.toml"));
    assert_eq!(config[2].as_str(), Some("640"));
}
