//! The background upkeep of the DMARC reports, on every node that serves: the gateway's sent
//! counts written every few seconds (`coverage`), the names of report sources looked up every
//! half minute (`names`), and every quarter of an hour the search for receivers that stopped
//! reporting (`coverage`) and the deletion of failure reports past their days (`feedback`).

use std::time::Duration;

use tokio::sync::watch;

use crate::Service;

/// How often the gateway's counts are written.
const FLUSH_EVERY: Duration = Duration::from_secs(10);
/// How often silent receivers are looked for and old failure reports deleted.
const SILENCE_EVERY: Duration = Duration::from_secs(15 * 60);
/// How often the names of report sources are looked up.
const NAMES_EVERY: Duration = Duration::from_secs(30);

impl Service {
    /// Writes the gateway's counts every few seconds, looks up the names of report sources
    /// every half minute, and every quarter of an hour looks for silent receivers and deletes the
    /// failure reports past their days, until `stopped`; the counts are written once more at the
    /// end.
    pub async fn run_report_upkeep(self, mut stopped: watch::Receiver<bool>) {
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        let mut silence = tokio::time::interval(SILENCE_EVERY);
        let mut names = tokio::time::interval(NAMES_EVERY);
        loop {
            tokio::select! {
                _ = flush.tick() => {
                    if let Err(error) = self.flush_sent().await {
                        tracing::warn!(%error, "the gateway's sent counts were not written; kept for the next try");
                    }
                }
                _ = silence.tick() => {
                    if let Err(error) = self.check_report_coverage().await {
                        tracing::warn!(%error, "looking for receivers that stopped reporting failed");
                    }
                    match self.expire_failure_reports().await {
                        Ok(0) => {}
                        Ok(deleted) => tracing::info!(deleted, "failure reports past their 7 days deleted"),
                        Err(error) => tracing::warn!(%error, "deleting old failure reports failed"),
                    }
                }
                _ = names.tick() => {
                    if let Err(error) = self.resolve_source_names().await {
                        tracing::warn!(%error, "looking up the names of report sources failed");
                    }
                }
                _ = stopped.changed() => break,
            }
        }
        if let Err(error) = self.flush_sent().await {
            tracing::warn!(%error, "the gateway's last sent counts were not written");
        }
    }
}
