//! `campeer devices` lists cameras, sound cards and capture PCMs as a table and as JSON,
//! and on a machine with neither camera nor sound card says so plainly and exits 0.

use std::process::Command;

fn devices(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_campeer"))
        .arg("devices")
        .args(args)
        .output()
        .expect("campeer runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn table_and_json_agree() {
    let (ok, table) = devices(&[]);
    assert!(ok, "devices exits 0");
    let (ok, json) = devices(&["--json"]);
    assert!(ok, "devices --json exits 0");
    let v: serde_json::Value = serde_json::from_str(&json).expect("--json prints JSON");
    let cameras = v["cameras"].as_array().expect("a cameras list");
    let cards = v["sound_cards"].as_array().expect("a sound_cards list");
    assert!(v["capture_pcms"].is_array());
    let capture: Vec<&serde_json::Value> =
        cameras.iter().filter(|c| c["is_camera"] == true).collect();
    if capture.is_empty() {
        assert!(table.contains("No camera"), "{table}");
    } else {
        for c in capture {
            assert!(table.contains(c["path"].as_str().unwrap()), "{table}");
        }
    }
    if cards.is_empty() {
        assert!(table.contains("No sound card"), "{table}");
    } else {
        assert!(table.contains("Sound cards"), "{table}");
    }
}
