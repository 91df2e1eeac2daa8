//! The service's log writer: lines gathered in memory and written to stderr in one `write` at most
//! every 50 ms, instead of one `write` per line.
//!
//! Measured reason: the gateway logs one line per message, and at ~5,000 messages a second
//! (`bench/smtp.sh`) that `write` was one of its nine system calls per message; with this writer,
//! `strace` counts 56 writes during 6,700 messages. A warning or an error is written at once,
//! after whatever was gathered before it (order kept), and everything gathered is written when
//! the guard drops and before a panic's message, so nothing is lost on the way out.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

/// How long a gathered line may wait before it is written.
const DELAY: Duration = Duration::from_millis(50);
/// Gathered bytes that are written at once without waiting for the delay.
const LIMIT: usize = 64 * 1024;

struct Pending {
    bytes: Vec<u8>,
    closed: bool,
    /// Where the lines go: stderr, or a test's buffer.
    target: Box<dyn Write + Send>,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock leaves plain bytes behind: still fine to write.
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_out(pending: &mut Pending) {
        if !pending.bytes.is_empty() {
            // Nowhere to report a failed log write; the bytes are dropped either way.
            let _ = pending.target.write_all(&pending.bytes);
            let _ = pending.target.flush();
            pending.bytes.clear();
        }
    }
}

/// The `MakeWriter` for tracing's fmt layer.
#[derive(Clone)]
pub struct BufferedLog {
    shared: Arc<Shared>,
}

/// Writes what is still gathered and stops the writer thread when dropped.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<thread::JoinHandle<()>>,
}

/// Starts the writer thread; keep the guard for as long as logs are written.
pub fn buffered_stderr() -> (BufferedLog, FlushGuard) {
    buffered(Box::new(std::io::stderr()), DELAY)
}

fn buffered(target: Box<dyn Write + Send>, delay: Duration) -> (BufferedLog, FlushGuard) {
    let pending = Pending { bytes: Vec::new(), closed: false, target };
    let shared = Arc::new(Shared { pending: Mutex::new(pending), wake: Condvar::new() });
    let writer_shared = Arc::clone(&shared);
    let thread = thread::Builder::new()
        .name("senderauth-log".into())
        .spawn(move || write_periodically(&writer_shared, delay))
        .ok();
    let panic_shared = Arc::downgrade(&shared);
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(shared) = panic_shared.upgrade() {
            Shared::write_out(&mut shared.lock());
        }
        previous_hook(info);
    }));
    if thread.is_none() {
        // No thread to write later: every line is written at once (see `LineWriter::write`).
        shared.lock().closed = true;
    }
    (BufferedLog { shared: Arc::clone(&shared) }, FlushGuard { shared, thread })
}

fn write_periodically(shared: &Shared, delay: Duration) {
    let mut pending = shared.lock();
    loop {
        while pending.bytes.is_empty() && !pending.closed {
            pending = shared.wake.wait(pending).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        // Let more lines gather, then write them together (at once when closing).
        let deadline = Instant::now() + delay;
        while !pending.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            pending = shared.wake.wait_timeout(pending, left).unwrap_or_else(|poisoned| poisoned.into_inner()).0;
        }
        Shared::write_out(&mut pending);
        if pending.closed {
            return;
        }
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        Shared::write_out(&mut self.shared.lock());
    }
}

/// One event's line: tracing's fmt layer formats the whole line, then hands it over in one `write`.
pub struct LineWriter<'a> {
    shared: &'a Shared,
    at_once: bool,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut pending = self.shared.lock();
        let was_empty = pending.bytes.is_empty();
        pending.bytes.extend_from_slice(bytes);
        if self.at_once || pending.closed || pending.bytes.len() >= LIMIT {
            Shared::write_out(&mut pending);
        } else if was_empty {
            self.shared.wake.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BufferedLog {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter { shared: &self.shared, at_once: true }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        // Warnings and errors are written at once (tracing orders levels by verbosity: ERROR < WARN).
        LineWriter { shared: &self.shared, at_once: *meta.level() <= Level::WARN }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A target the test can read while the writer holds it.
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<u8>>>);

    impl Write for Seen {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("the test buffer is not poisoned").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Seen {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("the test buffer is not poisoned")).into_owned()
        }
    }

    /// Runs `body` with a subscriber that writes bare messages through `writer`.
    fn logging(writer: &BufferedLog, body: impl FnOnce()) {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(writer.clone())
            .without_time()
            .with_level(false)
            .with_target(false)
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, body);
    }

    #[test]
    fn info_lines_wait_for_the_delay_and_closing_writes_them() {
        let seen = Seen::default();
        let (writer, guard) = buffered(Box::new(seen.clone()), Duration::from_secs(600));
        logging(&writer, || tracing::info!("gathered"));
        thread::sleep(Duration::from_millis(50));
        assert_eq!(seen.text(), "", "an info line waits to be written with the next ones");
        drop(guard);
        assert_eq!(seen.text(), "gathered\n", "closing writes it without waiting for the delay");
        logging(&writer, || tracing::info!("after the end"));
        assert_eq!(seen.text(), "gathered\nafter the end\n", "once closed, lines are written at once");
    }

    #[test]
    fn info_lines_are_written_together_after_the_delay_and_in_order() {
        let seen = Seen::default();
        let (writer, guard) = buffered(Box::new(seen.clone()), Duration::from_millis(20));
        logging(&writer, || {
            tracing::info!("one");
            tracing::info!("two");
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while seen.text().is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(seen.text(), "one\ntwo\n");
        drop(guard);
    }

    #[test]
    fn a_warning_is_written_at_once_after_the_lines_before_it() {
        let seen = Seen::default();
        let (writer, _guard) = buffered(Box::new(seen.clone()), Duration::from_secs(600));
        logging(&writer, || {
            tracing::info!("before");
            tracing::warn!("warning");
        });
        assert_eq!(seen.text(), "before\nwarning\n");
    }
}
