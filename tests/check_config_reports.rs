//! `campeer check-config` prints the effective configuration, and a bad value stops the
//! daemon at start with a message naming the key and a non-zero exit.

use std::process::Command;

fn campeer(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_campeer"));
    cmd.args(args).env_clear().current_dir(std::env::temp_dir());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("campeer runs")
}

#[test]
fn check_config_prints_the_effective_values() {
    let out = campeer(
        &["check-config"],
        &[("CAMPEER__SIGNALING__ROOM", "\"lobby\"")],
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("room = \"lobby\""), "{text}");
    assert!(text.contains("width = 640"), "{text}");
}

#[test]
fn bad_values_stop_the_daemon_naming_the_key() {
    for (key, value, named) in [
        ("CAMPEER__VIDEO__FPS", "500", "video.fps"),
        ("CAMPEER__VIDEO__WIDTH", "0", "video.width"),
        ("CAMPEER__SIGNALING__URL", "not a url", "signaling.url"),
        ("CAMPEER__VIDEO__WIDHT", "640", "widht"),
    ] {
        for args in [&["check-config"][..], &[][..]] {
            let out = campeer(args, &[(key, value)]);
            assert!(!out.status.success(), "{key}={value} {args:?} was accepted");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(named), "{key}={value}: {err}");
        }
    }
    let out = campeer(&["--config", "/nonexistent/campeer.toml"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a missing --config file was accepted"
    );
    assert!(err.contains("/nonexistent/campeer.toml"), "{err}");
}
