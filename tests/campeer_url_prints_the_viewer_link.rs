//! `campeer url` prints the viewer URL with the room token, made at the first run and
//! the same at every later one, while `check-config` never shows a configured token.

use std::process::Command;

fn campeer(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_campeer"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(std::env::temp_dir())
        .output()
        .expect("campeer runs")
}

#[test]
fn the_token_is_made_once_printed_by_url_and_hidden_from_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let state = [("CAMPEER__ACCESS__STATE_DIR", dir.path().to_str().unwrap())];
    let first = campeer(&["url", "--no-qr"], &state);
    assert!(first.status.success(), "{first:?}");
    let url = String::from_utf8(first.stdout).unwrap();
    let token = url
        .trim()
        .split_once("/#token=")
        .map(|(_, t)| t.to_owned())
        .unwrap_or_else(|| panic!("no #token= in {url:?}"));
    assert!(url.starts_with("http://"), "{url}");
    assert_eq!(token.len(), 64, "{url}");

    let again = campeer(&["url", "--no-qr"], &state);
    assert_eq!(String::from_utf8(again.stdout).unwrap(), url, "same token");

    // The same token configured instead of generated: check-config must still hide it.
    let check = campeer(&["check-config"], &[("CAMPEER__ACCESS__TOKEN", &token)]);
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(check.status.success(), "{shown}");
    assert!(!shown.contains(&token), "{shown}");
}
