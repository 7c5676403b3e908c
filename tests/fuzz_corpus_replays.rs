//! CI's share of the fuzzer (`scripts/fuzz`): every committed seed and every minimised
//! crash runs through the same functions the fuzz targets run, in seconds and on the
//! stable toolchain. A file that panics names itself in the failure.

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::path::Path;

/// Feeds every file under `fuzz/{corpus,regressions}/TARGET/` to `run`; returns how many.
fn replay(target: &str, run: Target) -> usize {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for kind in ["corpus", "regressions"] {
        let Ok(dir) = std::fs::read_dir(fuzz.join(kind).join(target)) else {
            continue;
        };
        for entry in dir {
            let path = entry.expect("a readable corpus directory").path();
            let data = std::fs::read(&path).expect("a readable corpus file");
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{} panics {target}", path.display());
            replayed += 1;
        }
    }
    replayed
}

/// What a fuzz target runs on one input.
type Target = fn(&[u8]);

/// Every fuzz target, by the name of its corpus directory.
const TARGETS: [(&str, Target); 4] = [
    ("room_event", targets::room_event),
    ("offer_sdp", targets::offer_sdp),
    ("candidate", targets::candidate),
    ("auth", targets::auth),
];

#[test]
fn every_corpus_file_is_parsed_without_panics() {
    for (target, run) in TARGETS {
        assert!(replay(target, run) > 0, "no corpus for {target}");
    }
}
