//! DKIM keys the platform holds for its customers: generation, the public record, and the
//! private keys sealed at rest with AES-256-GCM under a master key.
//!
//! A sealed key is `nonce || ciphertext || tag` plus the id of the master key that sealed it,
//! and it is bound to where its public half is published (the additional data), so a sealed key
//! copied onto another row does not open. Master keys are named by an id so that a new one can
//! take over while the old ones still open what they sealed (`senderauth keys rewrap` then
//! seals everything again under the new one).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
use senderauth_core::config::ProviderConfig;
pub use senderauth_core::dkim::key::KeyAlgorithm;
use senderauth_core::dkim::key::UnknownAlgorithm;
use senderauth_core::dkim::verify::HostedKey;
use senderauth_core::name::{AccountId, DomainName, normalize};
use senderauth_core::plan::{ed25519_selectors, expected_include, expected_selectors};
use senderauth_store::{DomainZone, KeyInfo, KeyState, NewKey, SealedKind, Sealer, Store};

/// What can go wrong with keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Algorithm(String),
    #[error("generating a {algorithm} key failed: {message}")]
    Generate { algorithm: KeyAlgorithm, message: String },
    #[error("{0}")]
    MasterKey(String),
    /// A sealed key that does not open: the wrong master key, or it was altered or moved.
    #[error("the private key for {name} does not open with master key {key_id:?}: {reason}")]
    Open { name: String, key_id: String, reason: &'static str },
}

impl From<UnknownAlgorithm> for KeyError {
    fn from(error: UnknownAlgorithm) -> KeyError {
        KeyError::Algorithm(error.0)
    }
}

/// A new key pair. The private half is PKCS#8 DER; `Debug` never shows it.
pub struct GeneratedKey {
    pub algorithm: KeyAlgorithm,
    /// The public key as DKIM records carry it (`p=`): base64 of the SubjectPublicKeyInfo for
    /// RSA (as `opendkim-genkey` writes it), of the 32 raw bytes for Ed25519 (RFC 8463).
    pub public_key: String,
    pub private_pkcs8: Vec<u8>,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("GeneratedKey")
            .field("algorithm", &self.algorithm)
            .field("public_key", &self.public_key)
            .field("private_pkcs8", &"(hidden)")
            .finish()
    }
}

/// Generates a key pair. RSA takes a while (a fraction of a second for 2048 bits, seconds for
/// 4096): call it off the async threads.
pub fn generate(algorithm: KeyAlgorithm) -> Result<GeneratedKey, KeyError> {
    let failed = |message: String| KeyError::Generate { algorithm, message };
    match algorithm.rsa_bits() {
        Some(bits) => {
            let private =
                rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).map_err(|error| failed(error.to_string()))?;
            let public = private.to_public_key().to_public_key_der().map_err(|error| failed(error.to_string()))?;
            let pkcs8 = private.to_pkcs8_der().map_err(|error| failed(error.to_string()))?;
            Ok(GeneratedKey {
                algorithm,
                public_key: BASE64.encode(public.as_bytes()),
                private_pkcs8: pkcs8.as_bytes().to_vec(),
            })
        }
        None => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| failed("no random bytes".to_string()))?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|error| failed(error.to_string()))?;
            Ok(GeneratedKey {
                algorithm,
                public_key: BASE64.encode(pair.public_key().as_ref()),
                private_pkcs8: pkcs8.as_ref().to_vec(),
            })
        }
    }
}

/// The master keys: the current one seals, every one opens what it sealed.
pub struct MasterKeys {
    current: String,
    keys: HashMap<String, LessSafeKey>,
    /// The same keys for HMAC, from which a key per purpose is derived (bounce tokens).
    macs: HashMap<String, ring::hmac::Key>,
    /// The derived keys by master key id and purpose, each derived once (the gateway tags every
    /// message's bounce token).
    derived: std::sync::RwLock<HashMap<String, HashMap<String, ring::hmac::Key>>>,
}

impl fmt::Debug for MasterKeys {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        formatter.debug_struct("MasterKeys").field("current", &self.current).field("ids", &ids).finish()
    }
}

/// A private key sealed under a master key.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Sealed {{ key_id: {:?}, {} bytes }}", self.key_id, self.bytes.len())
    }
}

/// What binds a sealed key to the place its public half is published.
fn additional_data(name: &str) -> String {
    format!("senderauth dkim private key for {name}")
}

impl MasterKeys {
    /// Reads master keys from text: one per line, `ID:BASE64` of 32 bytes, the first line the
    /// current one; blank lines and `#` comments are skipped. `origin` names the text in errors.
    pub fn parse(text: &str, origin: &str) -> Result<MasterKeys, KeyError> {
        let mut current = None;
        let mut keys = HashMap::new();
        let mut macs = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let invalid = |problem: &str| {
                KeyError::MasterKey(format!(
                    "{origin}, line {}: {problem}; each line is ID:KEY, KEY the base64 of 32 random bytes \
                     (e.g. `k2:$(head -c 32 /dev/urandom | base64)`)",
                    number + 1
                ))
            };
            let (id, encoded) = line.split_once(':').ok_or_else(|| invalid("no `:` between id and key"))?;
            let id = id.trim();
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(invalid("the id must be letters, digits, - or _"));
            }
            let bytes = BASE64.decode(encoded.trim()).map_err(|_| invalid("the key is not base64"))?;
            if bytes.len() != 32 {
                return Err(invalid(&format!("the key is {} bytes, not 32", bytes.len())));
            }
            let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| invalid("the key is unusable"))?;
            if keys.insert(id.to_string(), LessSafeKey::new(key)).is_some() {
                return Err(invalid(&format!("the id {id} is used twice")));
            }
            macs.insert(id.to_string(), ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes));
            current.get_or_insert_with(|| id.to_string());
        }
        let current = current.ok_or_else(|| KeyError::MasterKey(format!("{origin} holds no master key")))?;
        Ok(MasterKeys { current, keys, macs, derived: Default::default() })
    }

    /// The key for `purpose` derived from master key `id` (HMAC-SHA256 of the purpose).
    fn purpose_key(&self, id: &str, purpose: &str) -> Option<ring::hmac::Key> {
        let cached = self.derived.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(key) = cached.get(id).and_then(|purposes| purposes.get(purpose)) {
            return Some(key.clone());
        }
        drop(cached);
        // Only ids of master keys get here (`macs.get(id)?`), so the cache stays as small as they.
        let derived = ring::hmac::sign(self.macs.get(id)?, purpose.as_bytes());
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref());
        let mut cache = self.derived.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.entry(id.to_string()).or_default().insert(purpose.to_string(), key.clone());
        Some(key)
    }

    /// An HMAC-SHA256 tag over `data` for `purpose`, under a key derived from the current master
    /// key: what makes a bounce token the platform's own.
    pub fn tag(&self, purpose: &str, data: &[u8]) -> Vec<u8> {
        self.purpose_key(&self.current, purpose)
            .map(|key| ring::hmac::sign(&key, data).as_ref().to_vec())
            .unwrap_or_default()
    }

    /// Whether `tag` begins the tag over `data` for `purpose` under any master key (a token
    /// issued before a new master key took over still reads). Compared in constant time.
    pub fn tag_matches(&self, purpose: &str, data: &[u8], tag: &[u8]) -> bool {
        !tag.is_empty()
            && self.macs.keys().any(|id| {
                self.purpose_key(id, purpose).is_some_and(|key| {
                    let expected = ring::hmac::sign(&key, data);
                    let expected = expected.as_ref();
                    tag.len() <= expected.len()
                        && tag.iter().zip(expected).fold(0u8, |differ, (left, right)| differ | (left ^ right)) == 0
                })
            })
    }

    /// The master keys for a service: `SENDERAUTH_MASTER_KEY`'s text when set (as [`parse`]
    /// reads it), else the file `configured`, else `<data_dir>/master-key`, which is created
    /// with a new random key (readable by the owner only) when it does not exist yet. Returns
    /// the keys and, when the file was just created, its path.
    ///
    /// [`parse`]: MasterKeys::parse
    pub fn load(
        environment: Option<&str>,
        configured: Option<&Path>,
        data_dir: &Path,
    ) -> Result<(MasterKeys, Option<PathBuf>), KeyError> {
        if let Some(text) = environment.filter(|text| !text.trim().is_empty()) {
            return Ok((MasterKeys::parse(text, "SENDERAUTH_MASTER_KEY")?, None));
        }
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|error| {
                KeyError::MasterKey(format!("cannot read the master key file {}: {error}", path.display()))
            })
        };
        if let Some(path) = configured {
            return Ok((MasterKeys::parse(&read(path)?, &path.display().to_string())?, None));
        }
        let path = data_dir.join("master-key");
        if path.exists() {
            return Ok((MasterKeys::parse(&read(&path)?, &path.display().to_string())?, None));
        }
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| KeyError::MasterKey("no random bytes for a master key".to_string()))?;
        let text = format!(
            "# senderauth's master key: it seals the DKIM private keys in the database. Keep a copy\n\
             # apart from the database backups; without it the keys cannot be used.\n\
             k1:{}\n",
            BASE64.encode(key)
        );
        write_private_file(&path, &text)
            .map_err(|error| KeyError::MasterKey(format!("cannot write {}: {error}", path.display())))?;
        Ok((MasterKeys::parse(&text, &path.display().to_string())?, Some(path)))
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// Seals a private key published at `name`.
    pub fn seal(&self, name: &str, private_key: &[u8]) -> Result<Sealed, KeyError> {
        self.seal_in_context(&additional_data(name), private_key)
    }

    /// Seals a secret bound to `context` (the additional data: it opens only with the same).
    pub fn seal_in_context(&self, context: &str, private_key: &[u8]) -> Result<Sealed, KeyError> {
        let key = &self.keys[&self.current];
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyError::MasterKey("no random bytes for a nonce".to_string()))?;
        let mut bytes = private_key.to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut bytes)
            .map_err(|_| KeyError::MasterKey("sealing failed".to_string()))?;
        let mut sealed = nonce.to_vec();
        sealed.append(&mut bytes);
        Ok(Sealed { key_id: self.current.clone(), bytes: sealed })
    }

    /// Opens a private key sealed for `name`.
    pub fn open(&self, name: &str, sealed: &Sealed) -> Result<Vec<u8>, KeyError> {
        self.open_in_context(&additional_data(name), sealed).map_err(|error| match error {
            KeyError::Open { key_id, reason, .. } => KeyError::Open { name: name.to_string(), key_id, reason },
            other => other,
        })
    }

    /// Opens a secret sealed in `context`.
    pub fn open_in_context(&self, context: &str, sealed: &Sealed) -> Result<Vec<u8>, KeyError> {
        let failed = |reason| KeyError::Open { name: context.to_string(), key_id: sealed.key_id.clone(), reason };
        let key = self.keys.get(&sealed.key_id).ok_or_else(|| failed("no master key has that id"))?;
        if sealed.bytes.len() < NONCE_LEN {
            return Err(failed("it is too short"));
        }
        let (nonce, ciphertext) = sealed.bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| failed("it is too short"))?;
        let mut bytes = ciphertext.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut bytes)
            .map_err(|_| failed("the authentication tag does not match"))?;
        Ok(plain.to_vec())
    }
}

/// Makes the keys of newly connected domains.
#[derive(Clone, Debug)]
pub struct KeyMaker {
    pub master: Arc<MasterKeys>,
    pub algorithm: KeyAlgorithm,
}

impl KeyMaker {
    /// A key maker whose master key is made now and kept in memory only: for tests and
    /// throwaway demonstrations, whose keys need not outlive the process.
    pub fn in_memory(algorithm: KeyAlgorithm) -> Result<KeyMaker, KeyError> {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| KeyError::MasterKey("no random bytes for a master key".to_string()))?;
        let master = MasterKeys::parse(&format!("memory:{}", BASE64.encode(key)), "a master key in memory")?;
        Ok(KeyMaker { master: Arc::new(master), algorithm })
    }

    /// The RSA size keys are made with: the service's algorithm, or 2048 bits when that is
    /// Ed25519 (which never signs alone).
    pub fn rsa_algorithm(&self) -> KeyAlgorithm {
        if self.algorithm == KeyAlgorithm::Ed25519 { KeyAlgorithm::Rsa2048 } else { self.algorithm }
    }

    /// What connecting `domain` to `account` publishes: an RSA key per selector, the first
    /// active (signing), the second on standby until the first rotation, and the account's SPF
    /// include host. With `algorithm` Ed25519, the domain gets a pair of Ed25519 keys as well,
    /// on selectors of their own, and signs with both: receivers that do not verify Ed25519
    /// (RFC 8463) still find an RSA signature. Its RSA keys are then of the service's RSA
    /// size, or 2048 bits. The keys are generated off the async threads, all at once.
    pub async fn domain_zone(
        &self,
        provider: &ProviderConfig,
        account: &AccountId,
        domain: &DomainName,
        algorithm: KeyAlgorithm,
    ) -> Result<DomainZone, KeyError> {
        let rsa = if algorithm == KeyAlgorithm::Ed25519 { self.rsa_algorithm() } else { algorithm };
        let mut pairs = vec![(rsa, expected_selectors(provider, account, domain))];
        if algorithm == KeyAlgorithm::Ed25519 {
            pairs.push((KeyAlgorithm::Ed25519, ed25519_selectors(provider, account, domain)));
        }
        let generating: Vec<_> = pairs
            .iter()
            .flat_map(|(algorithm, selectors)| {
                let algorithm = *algorithm;
                selectors.iter().map(move |_| tokio::task::spawn_blocking(move || generate(algorithm)))
            })
            .collect();
        let mut generating = generating.into_iter();
        let mut keys = Vec::new();
        for (algorithm, selectors) in pairs {
            for (number, selector) in selectors.into_iter().enumerate() {
                let Some(generated) = generating.next() else { break };
                let generated =
                    generated.await.map_err(|error| KeyError::Generate { algorithm, message: error.to_string() })??;
                let name = normalize(&selector.target);
                let sealed = self.master.seal(&name, &generated.private_pkcs8)?;
                keys.push(NewKey {
                    selector: selector.selector,
                    name,
                    algorithm: generated.algorithm.as_str().to_string(),
                    public_key: generated.public_key,
                    sealed_private_key: sealed.bytes,
                    master_key_id: sealed.key_id,
                    state: if number == 0 { KeyState::Active } else { KeyState::Standby },
                });
            }
        }
        Ok(DomainZone {
            spf_include: Some(normalize(&expected_include(provider, account, domain))),
            keys,
            report_authorizations: report_authorizations(provider, domain),
            return_path: Some(return_path_target(provider, &account.to_string(), domain)),
        })
    }
}

/// Where a domain's return-path CNAME points, in the platform's zone.
pub fn return_path_target(provider: &ProviderConfig, account: &str, domain: &DomainName) -> String {
    normalize(&provider.return_path_target(account, domain))
}

/// Brings every connected domain's return-path target in line with the configuration (domains
/// connected before there were return-paths, or a changed target template); at start.
pub async fn sync_return_paths(
    store: &senderauth_store::Store,
    provider: &ProviderConfig,
    now: i64,
) -> Result<usize, senderauth_store::StoreError> {
    store
        .sync_return_paths(
            |account, domain| {
                DomainName::parse(domain).ok().map(|domain| return_path_target(provider, &account.to_string(), &domain))
            },
            now,
        )
        .await
}

/// The report authorization names (RFC 9990 section 4) the platform's DNS publishes for a
/// connected domain: none when the platform collects no reports.
pub fn report_authorizations(provider: &ProviderConfig, domain: &DomainName) -> Vec<String> {
    provider
        .report_address()
        .map(|address| senderauth_core::dmarc::merge::report_authorization_names(&address, domain))
        .unwrap_or_default()
}

/// Brings every connected domain's report authorizations in line with the configured report
/// address (domains connected before it, or under another address); at start.
pub async fn sync_report_authorizations(
    store: &senderauth_store::Store,
    provider: &ProviderConfig,
    now: i64,
) -> Result<usize, senderauth_store::StoreError> {
    let suffix = provider
        .report_address()
        .and_then(|address| address.rsplit_once('@').map(|(_, host)| format!("._report._dmarc.{host}")));
    store
        .sync_report_authorizations(
            suffix.as_deref(),
            |domain| {
                DomainName::parse(domain).map(|domain| report_authorizations(provider, &domain)).unwrap_or_default()
            },
            now,
        )
        .await
}

/// The keys a domain's CNAMEs must lead to: each published key (not removed), at its stored
/// name, with its `p=` (empty once revoked) and whether it signs now.
pub fn hosted_keys(keys: &[KeyInfo]) -> Vec<HostedKey> {
    keys.iter()
        .filter(|key| key.state != KeyState::Removed)
        .map(|key| HostedKey {
            selector: key.selector.clone(),
            target: key.name.clone(),
            public_key: if key.state == KeyState::Revoked { String::new() } else { key.public_key.clone() },
            signing: key.state == KeyState::Active,
        })
        .collect()
}

/// Whether a domain's keys include Ed25519 ones: it signs with them alongside RSA.
pub fn has_ed25519(keys: &[KeyInfo]) -> bool {
    keys.iter().any(|key| key.is_ed25519() && key.state != KeyState::Removed)
}

/// What `rewrap` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RewrapReport {
    pub resealed: u64,
    pub unchanged: u64,
}

/// Seals every stored private key again under the current master key, a batch at a time; a
/// key that does not open stops it with an error naming the key (nothing is half-written: each
/// key is replaced in one statement, only if it is still sealed as it was read).
pub async fn rewrap(store: &Store, master: &MasterKeys) -> Result<RewrapReport, StoredKeyError> {
    let mut report = RewrapReport { resealed: 0, unchanged: store.count_keys_sealed_under(master.current_id()).await? };
    loop {
        let batch = store.keys_sealed_under_other(master.current_id(), 500).await?;
        if batch.is_empty() {
            return Ok(report);
        }
        for key in batch {
            let old = Sealed { key_id: key.master_key_id.clone(), bytes: key.sealed.clone() };
            // A webhook secret's `name` is its whole context; a key's is where it is published.
            let context = match key.kind {
                SealedKind::WebhookSecret => key.name.clone(),
                SealedKind::DomainKey | SealedKind::PlatformKey => additional_data(&key.name),
            };
            let private = master.open_in_context(&context, &old)?;
            let new = master.seal_in_context(&context, &private)?;
            if store.reseal_key(&key, &new.key_id, &new.bytes).await? {
                report.resealed += 1;
            }
        }
    }
}

/// Why work on stored keys stopped.
#[derive(Debug, thiserror::Error)]
pub enum StoredKeyError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] senderauth_store::StoreError),
}

/// The variable domain's keys, one per selector at `<selector>._domainkey.<variable domain>`:
/// RSA keys of the configured size (see [`KeyMaker::rsa_algorithm`]) made on the first start,
/// the first signing and the second on standby for the first rotation, as a domain's (when
/// several nodes start at once, one key per selector wins). Returns the published keys.
pub async fn ensure_variable_domain_keys(
    store: &Store,
    maker: &KeyMaker,
    variable_domain: &str,
    selectors: &[String],
    now: i64,
) -> Result<Vec<KeyInfo>, StoredKeyError> {
    for selector in selectors {
        let name = normalize(&format!("{selector}._domainkey.{variable_domain}"));
        let held = store.platform_keys().await?;
        if held.iter().any(|key| key.name == name) {
            continue;
        }
        let algorithm = maker.rsa_algorithm();
        let generated = tokio::task::spawn_blocking(move || generate(algorithm))
            .await
            .map_err(|error| KeyError::Generate { algorithm, message: error.to_string() })??;
        let sealed = maker.master.seal(&name, &generated.private_pkcs8)?;
        let signing = held.iter().any(|key| key.state == KeyState::Active);
        let key = NewKey {
            selector: selector.clone(),
            name,
            algorithm: algorithm.as_str().to_string(),
            public_key: generated.public_key,
            sealed_private_key: sealed.bytes,
            master_key_id: sealed.key_id,
            state: if signing { KeyState::Standby } else { KeyState::Active },
        };
        store.add_platform_key(&key, now).await?;
    }
    Ok(store.platform_keys().await?)
}

impl Sealer for MasterKeys {
    fn seal(&self, context: &str, secret: &[u8]) -> Result<(String, Vec<u8>), String> {
        self.seal_in_context(context, secret)
            .map(|sealed| (sealed.key_id, sealed.bytes))
            .map_err(|error| error.to_string())
    }

    fn open(&self, context: &str, key_id: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
        let sealed = Sealed { key_id: key_id.to_string(), bytes: sealed.to_vec() };
        self.open_in_context(context, &sealed).map_err(|error| error.to_string())
    }
}

/// Writes a file only its owner can read (mode 0600 from the start, not changed after).
fn write_private_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use senderauth_core::dkim::key::dkim_record;

    fn keys(text: &str) -> MasterKeys {
        MasterKeys::parse(text, "test").expect("master keys")
    }

    #[test]
    fn algorithms_read_and_weak_keys_are_refused_with_a_reason() {
        assert_eq!("RSA-3072".parse::<KeyAlgorithm>().expect("rsa-3072"), KeyAlgorithm::Rsa3072);
        assert_eq!("ed25519".parse::<KeyAlgorithm>().expect("ed25519"), KeyAlgorithm::Ed25519);
        let error = "rsa-1024".parse::<KeyAlgorithm>().expect_err("too weak").to_string();
        assert!(error.contains("too weak") && error.contains("rsa-2048"), "{error}");
        let error = "dsa".parse::<KeyAlgorithm>().expect_err("unknown").to_string();
        assert!(error.contains("unknown key algorithm"), "{error}");
    }

    #[tokio::test]
    async fn ed25519_keys_come_beside_an_rsa_pair_never_alone() {
        let provider = ProviderConfig::default();
        let account = AccountId::parse("7").expect("account");
        let domain = DomainName::parse("dual.example.com").expect("domain");
        let kinds = |zone: &DomainZone| -> Vec<(String, String, KeyState)> {
            zone.keys.iter().map(|key| (key.selector.clone(), key.algorithm.clone(), key.state)).collect()
        };
        let expect = |rows: &[(&str, &str, KeyState)]| -> Vec<(String, String, KeyState)> {
            rows.iter().map(|(s, a, k)| (s.to_string(), a.to_string(), *k)).collect()
        };
        // A service whose default is Ed25519: its domains get RSA-2048 as well, and the
        // variable domain's keys are RSA.
        let maker = KeyMaker::in_memory(KeyAlgorithm::Ed25519).expect("maker");
        assert_eq!(maker.rsa_algorithm(), KeyAlgorithm::Rsa2048);
        let zone = maker.domain_zone(&provider, &account, &domain, KeyAlgorithm::Ed25519).await.expect("keys");
        assert_eq!(
            kinds(&zone),
            expect(&[
                ("sa1-7", "rsa-2048", KeyState::Active),
                ("sa2-7", "rsa-2048", KeyState::Standby),
                ("se1-7", "ed25519", KeyState::Active),
                ("se2-7", "ed25519", KeyState::Standby),
            ])
        );
        assert_eq!(zone.keys[2].name, "se1-7.dual-example-com.dkim.esp.example");
        // A service on RSA-3072 asked for Ed25519: its RSA keys keep the service's size.
        let maker = KeyMaker::in_memory(KeyAlgorithm::Rsa3072).expect("maker");
        let zone = maker.domain_zone(&provider, &account, &domain, KeyAlgorithm::Ed25519).await.expect("keys");
        assert_eq!(zone.keys.iter().filter(|key| key.algorithm == "rsa-3072").count(), 2);
        let zone = maker.domain_zone(&provider, &account, &domain, KeyAlgorithm::Rsa2048).await.expect("keys");
        assert_eq!(
            kinds(&zone),
            expect(&[("sa1-7", "rsa-2048", KeyState::Active), ("sa2-7", "rsa-2048", KeyState::Standby)])
        );
    }

    #[test]
    fn an_ed25519_key_is_published_as_its_32_raw_bytes() {
        let key = generate(KeyAlgorithm::Ed25519).expect("key");
        assert_eq!(BASE64.decode(&key.public_key).expect("base64").len(), 32);
        assert_eq!(
            dkim_record(key.algorithm, &key.public_key, false),
            format!("v=DKIM1; k=ed25519; p={}", key.public_key)
        );
        assert_eq!(dkim_record(key.algorithm, &key.public_key, true), "v=DKIM1; k=ed25519; p=");
        assert!(!format!("{key:?}").contains(&BASE64.encode(&key.private_pkcs8)));
    }

    #[test]
    fn a_sealed_key_opens_only_with_its_master_key_and_for_its_name() {
        let first = keys("k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
        let secret = b"a private key".to_vec();
        let sealed = first.seal("sa1-1.example-com.dkim.esp.example", &secret).expect("seal");
        assert_eq!(sealed.key_id, "k1");
        assert!(!sealed.bytes.windows(secret.len()).any(|window| window == secret), "the ciphertext holds the key");
        assert_eq!(first.open("sa1-1.example-com.dkim.esp.example", &sealed).expect("opens"), secret);
        // Moved to another name, it does not open.
        let error = first.open("sa1-2.example-com.dkim.esp.example", &sealed).expect_err("bound to its name");
        assert!(error.to_string().contains("does not match"), "{error}");
        // Altered, it does not open.
        let mut altered = sealed.clone();
        altered.bytes[20] ^= 1;
        assert!(first.open("sa1-1.example-com.dkim.esp.example", &altered).is_err());
        // A keyring whose current key is new still opens what the old one sealed.
        let rotated = keys(
            "# the new key first\nk2:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\nk1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        );
        assert_eq!(rotated.current_id(), "k2");
        assert_eq!(rotated.open("sa1-1.example-com.dkim.esp.example", &sealed).expect("old key opens"), secret);
        let resealed = rotated.seal("sa1-1.example-com.dkim.esp.example", &secret).expect("seal");
        assert_eq!(resealed.key_id, "k2");
        let error =
            first.open("sa1-1.example-com.dkim.esp.example", &resealed).expect_err("k2 unknown to the old ring");
        assert!(error.to_string().contains("no master key has that id"), "{error}");
    }

    #[test]
    fn a_tag_matches_under_its_master_key_and_purpose_only_however_often_asked() {
        let first = keys("k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
        let rotated =
            keys("k2:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\nk1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
        let old = first.tag("bounce", b"message 1");
        // Asked twice, the second time from the derived keys kept: the same answers.
        for _ in 0..2 {
            assert_eq!(first.tag("bounce", b"message 1"), old);
            assert!(rotated.tag_matches("bounce", b"message 1", &old), "k1's tag after rotation");
            assert!(!rotated.tag_matches("report", b"message 1", &old), "another purpose");
            assert!(!rotated.tag_matches("bounce", b"message 2", &old), "other data");
            assert_ne!(rotated.tag("bounce", b"message 1"), old, "k2 tags differently");
            assert_ne!(first.tag("report", b"message 1"), old, "each purpose its own key");
        }
    }

    #[test]
    fn bad_master_key_text_says_what_to_write() {
        for (text, expected) in [
            ("k1", "no `:`"),
            ("k1:not base64!", "not base64"),
            ("k1:AAAA", "3 bytes, not 32"),
            ("k 1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "letters, digits"),
            ("# nothing\n", "holds no master key"),
        ] {
            let error = MasterKeys::parse(text, "the file").expect_err(text).to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let debug = format!("{:?}", keys("k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"));
        assert!(debug.contains("k1") && !debug.contains("AAAA"), "{debug}");
    }

    #[test]
    fn the_first_start_writes_a_master_key_only_the_owner_can_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("senderauth-master-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (first, created) = MasterKeys::load(None, None, &dir).expect("created");
        let path = created.expect("a new file");
        assert_eq!(std::fs::metadata(&path).expect("file").permissions().mode() & 0o777, 0o600);
        let sealed = first.seal("n", b"k").expect("seal");
        let (again, created) = MasterKeys::load(None, None, &dir).expect("read back");
        assert!(created.is_none());
        assert_eq!(again.open("n", &sealed).expect("same key"), b"k");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
