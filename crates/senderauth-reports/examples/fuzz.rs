//! The fuzz-style benchmark: random and mutated inputs made from the real samples
//! (`senderauth_reports::mutate`) through unpacking and parsing, on every core, counting cases
//! and panics. A panicking input is written to `target/fuzz-failures/` to be made again.
//!
//! Usage: cargo run --release -p senderauth-reports --example fuzz [CASES] [SEED]
//! (CASES 1,000,000 by default). bench/dmarc-fuzz.sh runs it; docs/benchmarks.md has the result.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use senderauth_reports::mutate::{Rng, case};
use senderauth_reports::{ReportEvent, stream_reports};

fn main() {
    let mut args = std::env::args().skip(1);
    let cases: u64 = args.next().and_then(|text| text.replace(',', "").parse().ok()).unwrap_or(1_000_000);
    let seed: u64 = args.next().and_then(|text| text.parse().ok()).unwrap_or(1);
    let root =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/dmarc-reports/parsedmarc/samples");
    let mut samples = Vec::new();
    let mut xml = Vec::new();
    for folder in ["aggregate", "aggregate_invalid", "extract_report"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder)) else { continue };
        for entry in entries.flatten() {
            let Ok(bytes) = std::fs::read(entry.path()) else { continue };
            // The big sample is the small ones' shape, a hundred times over: left out, so that a
            // million cases take minutes.
            if bytes.len() > 100 * 1024 {
                continue;
            }
            if entry.path().extension().is_some_and(|extension| extension == "xml") {
                xml.push(bytes.clone());
            }
            samples.push(bytes);
        }
    }
    assert!(!samples.is_empty(), "no samples under {}: the shared test data sits beside the project", root.display());
    // Quiet panics: each is counted and its input kept, not printed.
    std::panic::set_hook(Box::new(|_| {}));
    let threads = std::thread::available_parallelism().map_or(1, |cores| cores.get()) as u64;
    let (done, panics, refused) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let (samples, xml, done, panics, refused) = (&samples, &xml, &done, &panics, &refused);
            scope.spawn(move || {
                let mut rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(thread));
                for index in (thread..cases).step_by(threads as usize) {
                    let input = case(&mut rng, samples, xml);
                    // Through the whole path the service takes: unpacking, parsing, batches, the
                    // gzip copy of the XML.
                    let outcome = std::panic::catch_unwind(|| {
                        let mut whole = true;
                        let unpacked = stream_reports(&input, 100, |event| {
                            if matches!(event, ReportEvent::Failed { .. }) {
                                whole = false;
                            }
                            Ok(())
                        });
                        unpacked.is_ok() && whole
                    });
                    match outcome {
                        Ok(true) => {}
                        Ok(false) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            panics.fetch_add(1, Ordering::Relaxed);
                            let folder = PathBuf::from("target/fuzz-failures");
                            let _ = std::fs::create_dir_all(&folder);
                            let _ = std::fs::write(folder.join(format!("case-{seed}-{index}")), &input);
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let (done, panics, refused) = (done.into_inner(), panics.into_inner(), refused.into_inner());
    println!(
        "{done} cases in {elapsed:.1} s ({:.0} per second, {threads} threads, seed {seed}): {panics} panics, {refused} refused with an error, {} read",
        done as f64 / elapsed,
        done - panics - refused
    );
    if panics > 0 {
        eprintln!("the panicking inputs are in target/fuzz-failures/");
        std::process::exit(1);
    }
}
