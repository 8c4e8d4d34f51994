//! Waiting for a condition instead of sleeping and hoping: bounds are generous and only reached
//! when the test fails.

use std::time::Duration;

/// Polls `pred` (every 100 ms, up to 30 s) until it holds; panics naming `what`.
pub async fn wait_until_true(what: &str, mut pred: impl FnMut() -> bool) {
    for _ in 0..300 {
        if pred() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Whether `pid` is a live process (a zombie is not).
pub fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_string()))
        .is_some_and(|r| !r.starts_with('Z') && !r.starts_with('X'))
}
