//! For the tests that run inside the VM of `scripts/vm-test`, which sets the variables read here.

use std::process::Command;

/// Fails a VM-only test run anywhere else, with the way to run it.
pub fn in_vm() {
    assert!(
        std::env::var_os("CAMPEER_VM").is_some(),
        "run through scripts/vm-test"
    );
}

/// Loads v4l2loopback (built by scripts/vm-test) as `/dev/video{nr}`, a node that turns
/// into a camera once a writer streams into it; returns its path.
pub fn load_loopback_camera(nr: u32) -> String {
    let ko = std::env::var("CAMPEER_VM_LOOPBACK_KO").expect("set by scripts/vm-test");
    let ok = Command::new("insmod")
        .arg(&ko)
        .arg("exclusive_caps=1")
        .arg(format!("video_nr={nr}"))
        .status()
        .expect("insmod runs")
        .success();
    assert!(ok, "insmod {ko}");
    format!("/dev/video{nr}")
}
