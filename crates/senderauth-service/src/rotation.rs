//! DKIM key rotation with two selectors, so that customers never touch DNS again.
//!
//! A domain's two selectors each publish a key. Rotating gives the idle selector (the one not
//! signing) a new key, *pending*: published, not yet signing. Once it has been published for
//! longer than the records' TTL plus a margin (every resolver that cached the selector's old
//! answer has let it go), it becomes *active* and signs, and the key that signed before is
//! *retired*: still published, so mail signed with it and still in transit verifies. After the
//! grace period it is *revoked*: published with an empty `p=`, which tells verifiers the key
//! was withdrawn, and safe to remove. The next rotation replaces it.
//!
//! Every step is a conditional update in the store, so several nodes may run the rotation
//! loop at once: each transition happens once.

use std::time::Duration;

use senderauth_store::{KeyGroup, KeyInfo, KeyState, NewKey, Store, StoreError};
use tokio::sync::watch;

use crate::keys::{KeyAlgorithm, KeyError, KeyMaker, generate};

/// When keys move on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationPolicy {
    /// How long a key signs before the domain is rotated, in seconds.
    pub interval: i64,
    /// How long a new key is published before it signs: the records' TTL plus a margin.
    pub activation_delay: i64,
    /// How long a retired key stays published before it is revoked.
    pub grace: i64,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        RotationPolicy { interval: 180 * 86_400, activation_delay: 3600 + 3600, grace: 7 * 86_400 }
    }
}

impl RotationPolicy {
    /// When a pending key will start signing.
    pub fn activates_at(&self, key: &KeyInfo) -> Option<i64> {
        (key.state == KeyState::Pending).then_some(key.created_at + self.activation_delay)
    }

    /// When a retired key will be revoked.
    pub fn revokes_at(&self, key: &KeyInfo) -> Option<i64> {
        (key.state == KeyState::Retired).then(|| key.retired_at.map(|at| at + self.grace)).flatten()
    }

    /// When the domain of an active key is due for its scheduled rotation.
    pub fn rotates_at(&self, key: &KeyInfo) -> Option<i64> {
        (key.state == KeyState::Active).then(|| key.active_at.map(|at| at + self.interval)).flatten()
    }
}

/// Why a rotation did not start.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// A rotation is under way: a key pending or retiring.
    #[error("{0}")]
    InProgress(String),
    #[error("the domain has no hosted keys to rotate")]
    NoKeys,
    /// Ed25519 keys come in a pair of their own, beside the RSA pair, from the domain's
    /// connection; a rotation does not turn RSA keys into Ed25519 ones.
    #[error(
        "the domain has no Ed25519 keys: Ed25519 signs alongside RSA on two selectors of its own, \
         given when the domain is connected with dkim_algorithm \"ed25519\"; rotate its RSA keys with an RSA size"
    )]
    NoEd25519,
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Starts a rotation of one domain's keys (or the platform's own) now: the idle selector gets
/// a new key, pending, of `algorithm` (unset: the algorithm of the RSA key signing now). An
/// RSA size rotates the RSA pair, Ed25519 the Ed25519 pair of a domain that has one. Returns
/// the new key.
pub async fn start(
    store: &Store,
    maker: &KeyMaker,
    policy: &RotationPolicy,
    group: KeyGroup,
    algorithm: Option<KeyAlgorithm>,
    now: i64,
) -> Result<KeyInfo, RotateError> {
    let keys = store.group_keys(group).await?;
    let published: Vec<&KeyInfo> = keys.iter().filter(|key| key.state != KeyState::Removed).collect();
    if let Some(pending) = published.iter().find(|key| key.state == KeyState::Pending) {
        let at = policy.activates_at(pending).unwrap_or(now);
        return Err(RotateError::InProgress(format!(
            "a rotation is under way: the new key at {} starts signing at {at} (Unix time)",
            pending.selector
        )));
    }
    if let Some(retired) = published.iter().find(|key| key.state == KeyState::Retired) {
        let at = policy.revokes_at(retired).unwrap_or(now);
        return Err(RotateError::InProgress(format!(
            "the previous key at {} is still published for mail in transit until {at} (Unix time); rotate after that",
            retired.selector
        )));
    }
    if published.is_empty() {
        return Err(RotateError::NoKeys);
    }
    // A domain that signs with Ed25519 alongside RSA has a pair of each: the one rotated is
    // the pair of `algorithm`'s kind (unset: the RSA pair, or the only pair there is).
    let ed25519 = match algorithm {
        Some(algorithm) => algorithm == KeyAlgorithm::Ed25519,
        None => published.iter().all(|key| key.is_ed25519()),
    };
    let pair: Vec<&KeyInfo> = published.iter().copied().filter(|key| key.is_ed25519() == ed25519).collect();
    let active = pair.iter().find(|key| key.state == KeyState::Active).ok_or(if ed25519 {
        RotateError::NoEd25519
    } else {
        RotateError::NoKeys
    })?;
    let idle = pair.iter().find(|key| key.state != KeyState::Active).ok_or(RotateError::NoKeys)?;
    let algorithm = match algorithm {
        Some(algorithm) => algorithm,
        None => active.algorithm.parse().map_err(KeyError::from)?,
    };
    let generated = tokio::task::spawn_blocking(move || generate(algorithm))
        .await
        .map_err(|error| KeyError::Generate { algorithm, message: error.to_string() })??;
    let sealed = maker.master.seal(&idle.name, &generated.private_pkcs8)?;
    let new = NewKey {
        selector: idle.selector.clone(),
        name: idle.name.clone(),
        algorithm: algorithm.as_str().to_string(),
        public_key: generated.public_key,
        sealed_private_key: sealed.bytes,
        master_key_id: sealed.key_id,
        state: KeyState::Pending,
    };
    if !store.start_key_rotation(group, idle.id, idle.state, &new, now).await? {
        return Err(RotateError::InProgress("a rotation of these keys started at the same time".to_string()));
    }
    let keys = store.group_keys(group).await?;
    keys.into_iter()
        .find(|key| key.state == KeyState::Pending)
        .ok_or_else(|| RotateError::InProgress("the new key moved on already".to_string()))
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RotationPass {
    pub activated: u64,
    pub revoked: u64,
    pub started: u64,
}

/// One pass of the rotation loop at `now`: pending keys published long enough start signing,
/// retired keys past their grace are revoked, and up to `limit` domains (and the platform's
/// own keys) whose key has signed for the whole interval start a rotation.
pub async fn run_once(
    store: &Store,
    maker: &KeyMaker,
    policy: &RotationPolicy,
    now: i64,
    limit: i64,
) -> Result<RotationPass, RotateError> {
    let mut pass = RotationPass {
        activated: store.activate_pending_keys(now - policy.activation_delay, now, limit).await?,
        revoked: store.revoke_retired_keys(now - policy.grace, now, limit).await?,
        started: 0,
    };
    let mut due: Vec<(KeyGroup, Option<KeyAlgorithm>)> = Vec::new();
    for (domain_id, algorithm) in store.domains_due_for_rotation(now - policy.interval, limit).await? {
        // A key of an algorithm this version does not know is left alone, not the whole pass.
        match algorithm.parse() {
            Ok(algorithm) => due.push((KeyGroup::Domain(domain_id), Some(algorithm))),
            Err(error) => tracing::warn!(domain_id, %error, "a key due for rotation"),
        }
    }
    if store.platform_due_for_rotation(now - policy.interval).await? {
        due.push((KeyGroup::Platform, None));
    }
    for (group, algorithm) in due {
        match start(store, maker, policy, group, algorithm, now).await {
            Ok(_) => pass.started += 1,
            Err(RotateError::InProgress(_)) => {} // another node took it
            Err(error) => tracing::warn!(?group, %error, "starting a scheduled key rotation"),
        }
    }
    Ok(pass)
}

/// Runs the rotation loop every `every` until `stopped` turns true.
pub async fn run_until_stopped(
    store: Store,
    maker: KeyMaker,
    policy: RotationPolicy,
    clock: impl Fn() -> i64,
    every: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        match run_once(&store, &maker, &policy, clock(), 100).await {
            Ok(pass) if pass != RotationPass::default() => {
                tracing::info!(pass.activated, pass.revoked, pass.started, "DKIM key rotation");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "DKIM key rotation; trying again"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped.wait_for(|stopped| *stopped) => return,
        }
    }
}
