//! How a connection waits for a lock another connection holds: the one
//! busy policy of every SQLite connection the store opens.
//!
//! SQLite's own busy timeout sleeps 1 ms at the first conflict, then 2, 5,
//! 10 ms and on up to 100 ms. The writers here (the daemon, a queue's shims,
//! the CLI) hold the write lock for well under a millisecond, so with a few
//! of them writing at once each of those sleeps outlasted the lock it waited
//! for many times over: four busy queues slept about once per task. These
//! sleeps start at [`FIRST_SLEEP`] and double up to [`LONGEST_SLEEP`],
//! SQLite's own longest, until they add up to [`BUSY_TIMEOUT`]: a short
//! conflict costs microseconds, and a long wait (another process's long
//! transaction, many claim workers taking turns) backs off as SQLite's
//! does. A cap of 10 ms lengthened the tail of 16 SQLite claim workers
//! taking turns with long batches (`bench/postgres.sh`).

use std::time::Duration;

use rusqlite::Connection;

/// How long a connection waits for another's lock before giving up.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The sleep before the first retry.
const FIRST_SLEEP: Duration = Duration::from_micros(50);

/// The longest sleep between two retries (SQLite's own longest).
const LONGEST_SLEEP: Duration = Duration::from_millis(100);

/// Makes `conn` wait for a busy lock as the module docs say.
pub(crate) fn wait_when_busy(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_handler(Some(|retries| match sleep_before_retry(retries) {
        Some(sleep) => {
            std::thread::sleep(sleep);
            true
        }
        None => false,
    }))
}

/// The sleep before retry number `retries` (0 for the first), or none once
/// the sleeps before it add up to [`BUSY_TIMEOUT`].
fn sleep_before_retry(retries: i32) -> Option<Duration> {
    let retries = u32::try_from(retries).ok()?;
    // 2^DOUBLINGS * FIRST_SLEEP is the first to reach LONGEST_SLEEP.
    let doublings = (0..32)
        .find(|&k| FIRST_SLEEP.saturating_mul(1 << k) >= LONGEST_SLEEP)
        .unwrap_or(31);
    let (sleep, slept) = if retries < doublings {
        let sleep = FIRST_SLEEP.saturating_mul(1 << retries);
        // FIRST_SLEEP * (1 + 2 + ... + 2^(retries - 1))
        (sleep, sleep.saturating_sub(FIRST_SLEEP))
    } else {
        let ramp = FIRST_SLEEP.saturating_mul((1 << doublings) - 1);
        let capped = LONGEST_SLEEP.saturating_mul(retries - doublings);
        (LONGEST_SLEEP, ramp.saturating_add(capped))
    };
    (slept < BUSY_TIMEOUT).then_some(sleep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_start_short_double_to_the_longest_and_stop_at_the_timeout() {
        let sleeps: Vec<Duration> = (0..).map_while(sleep_before_retry).take(100_000).collect();
        assert_eq!(sleeps[0], FIRST_SLEEP);
        assert_eq!(sleeps[1], FIRST_SLEEP * 2);
        assert!(sleeps.windows(2).all(|w| w[0] <= w[1]), "never shorter");
        assert!(sleeps.iter().all(|&s| s <= LONGEST_SLEEP));
        assert_eq!(sleeps.last(), Some(&LONGEST_SLEEP));
        let total: Duration = sleeps.iter().sum();
        assert!(
            total >= BUSY_TIMEOUT && total < BUSY_TIMEOUT + LONGEST_SLEEP,
            "{total:?} in {} sleeps",
            sleeps.len()
        );
        assert_eq!(sleep_before_retry(-1), None);
    }
}
