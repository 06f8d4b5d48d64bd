//! The online key store: the exchange's private denomination keys (RSA and Clause-Schnorr) and
//! online signing keys (EdDSA), kept apart from the HTTP handlers. Handlers never see a private
//! key: they ask the store to sign a blinded planchet or a message and get the signature back.
//! This is the role of the C exchange's security modules (`taler-exchange-secmod-rsa`, `-cs`,
//! `-eddsa`); here it is a module of the same process, and the private keys are files in
//! `KEY_DIR` (mode 0600, directories 0700) that never enter the database.
//!
//! Layout: `{KEY_DIR}/denominations/{section}/{start_s}.rsa` (PKCS#1 DER) or `.cs` (32-byte
//! scalar), `{KEY_DIR}/signkeys/{start_s}.eddsa` (32-byte seed). A key's start time is its
//! file name; everything else about it (value, fees, durations) comes from the configuration
//! when the key is offered to the offline key, and from the database once it is signed.
//!
//! Blind signing is CPU work (an RSA-2048 private-key operation is about a millisecond): it
//! runs on tokio's blocking pool, at most one job per core, and a batch is split across cores.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use cardcash_crypto::purpose::SignedMessage;
use cardcash_crypto::{EddsaPrivateKey, cs, rsa};
use cardcash_util::{EddsaPublicKey, EddsaSignature, HashCode, RelativeTime, Timestamp};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::config::{CipherConfig, ExchangeConfig};

/// Errors of the key store.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error("key store IO at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("corrupt key file {path}: {why}")]
    Corrupt { path: PathBuf, why: String },
    #[error("no private key for denomination {0}")]
    UnknownDenomination(HashCode),
    #[error("the planchet cannot be signed: {0}")]
    BadPlanchet(String),
    #[error("key generation failed: {0}")]
    Generation(String),
    #[error("signing task failed: {0}")]
    Task(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyStoreError + '_ {
    move |source| KeyStoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A denomination's public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenominationPublic {
    Rsa(rsa::RsaPublicKey),
    Cs([u8; 32]),
}

impl DenominationPublic {
    /// `h_denom_pub` (age mask 0: this exchange has no age-restricted denominations).
    pub fn hash(&self) -> HashCode {
        match self {
            Self::Rsa(k) => k.h_denom_pub(0),
            Self::Cs(k) => cs::h_denom_pub(k, 0),
        }
    }

    /// The cipher number of `h_denom_pub` and envelope hashes (RSA 1, CS 2).
    pub fn cipher_number(&self) -> u32 {
        match self {
            Self::Rsa(_) => rsa::CIPHER_RSA,
            Self::Cs(_) => cs::CIPHER_CS,
        }
    }

    /// The key's bytes as the database stores them (RSA: GNUnet encoding; CS: the point).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Rsa(k) => k.encode(),
            Self::Cs(k) => k.to_vec(),
        }
    }

    /// The inverse of [`Self::to_bytes`] for the cipher number `cipher`.
    pub fn from_bytes(cipher: u32, bytes: &[u8]) -> Option<Self> {
        match cipher {
            rsa::CIPHER_RSA => rsa::RsaPublicKey::decode(bytes).ok().map(Self::Rsa),
            cs::CIPHER_CS => <[u8; 32]>::try_from(bytes).ok().map(Self::Cs),
            _ => None,
        }
    }
}

enum DenominationPrivate {
    Rsa(rsa::RsaPrivateKey),
    Cs(Zeroizing<[u8; 32]>),
}

/// One denomination key of the store.
pub struct DenominationKey {
    /// The `[coin_*]` section it belongs to.
    pub section: String,
    /// When withdrawing with it may start.
    pub start: Timestamp,
    pub public: DenominationPublic,
    pub h_denom_pub: HashCode,
    private: DenominationPrivate,
}

impl std::fmt::Debug for DenominationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DenominationKey")
            .field("section", &self.section)
            .field("start", &self.start)
            .field("h_denom_pub", &self.h_denom_pub)
            .finish_non_exhaustive()
    }
}

/// One online signing key of the store.
pub struct OnlineSigningKey {
    pub start: Timestamp,
    pub public: EddsaPublicKey,
    private: EddsaPrivateKey,
}

impl std::fmt::Debug for OnlineSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineSigningKey")
            .field("start", &self.start)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// A planchet to sign blindly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlindedPlanchet {
    /// The blinded RSA message, as received.
    Rsa(Vec<u8>),
    /// The session nonce and the two blinded challenges.
    Cs { nonce: [u8; 32], c: [[u8; 32]; 2] },
}

/// A blind signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlindSignature {
    Rsa(Vec<u8>),
    /// The chosen clause `b` and the blinded scalar `s_b`.
    Cs {
        b: u32,
        s: [u8; 32],
    },
}

/// Keys the master key revoked (from the database): the key store replaces them.
#[derive(Debug, Clone, Default)]
pub struct Revoked {
    pub denominations: std::collections::HashSet<HashCode>,
    pub signkeys: std::collections::HashSet<EddsaPublicKey>,
}

/// What the key store holds in memory.
#[derive(Default)]
struct Keys {
    denominations: HashMap<HashCode, Arc<DenominationKey>>,
    /// Sorted by start time.
    signkeys: Vec<Arc<OnlineSigningKey>>,
}

/// Which kind of key a security-module key announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secmod {
    Rsa,
    Cs,
    Eddsa,
}

impl Secmod {
    fn file(self) -> &'static str {
        match self {
            Self::Rsa => "secmod-rsa.eddsa",
            Self::Cs => "secmod-cs.eddsa",
            Self::Eddsa => "secmod-eddsa.eddsa",
        }
    }
}

/// The key store. Cheap to share (`Arc`).
pub struct KeyStore {
    dir: PathBuf,
    /// The security modules' own keys, which sign every key they announce to the offline key
    /// (`/management/keys`), as the C exchange's `taler-exchange-secmod-*` processes do.
    secmod: [EddsaPrivateKey; 3],
    keys: RwLock<Keys>,
    signers: Semaphore,
    cores: usize,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The withdraw seed of Clause-Schnorr's nonce derivation (GNUnet `"rw"`; melts use `"rm"`).
pub const CS_WITHDRAW_SEED: &str = "rw";

impl KeyStore {
    /// Opens the store at `dir` (created 0700 if missing) and loads every key file.
    pub fn open(dir: &Path) -> Result<Self, KeyStoreError> {
        create_private_dir(dir)?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let secmod = [
            load_or_create_seed(&dir.join(Secmod::Rsa.file()))?,
            load_or_create_seed(&dir.join(Secmod::Cs.file()))?,
            load_or_create_seed(&dir.join(Secmod::Eddsa.file()))?,
        ];
        let store = Self {
            dir: dir.to_owned(),
            secmod,
            keys: RwLock::new(Keys::default()),
            // Twice the cores: a chunk's permit comes back through a tokio worker, and a
            // preempted signing thread still holds one; with just `cores` a core sat idle.
            signers: Semaphore::new(cores * 2),
            cores,
        };
        store.load()?;
        Ok(store)
    }

    fn load(&self) -> Result<(), KeyStoreError> {
        let mut keys = Keys::default();
        let denom_dir = self.dir.join("denominations");
        if denom_dir.is_dir() {
            for section in fs::read_dir(&denom_dir).map_err(io(&denom_dir))? {
                let section = section.map_err(io(&denom_dir))?;
                let section_path = section.path();
                if !section_path.is_dir() {
                    continue;
                }
                let name = section.file_name().to_string_lossy().into_owned();
                for file in fs::read_dir(&section_path).map_err(io(&section_path))? {
                    let path = file.map_err(io(&section_path))?.path();
                    if let Some(key) = read_denomination(&name, &path)? {
                        keys.denominations.insert(key.h_denom_pub, Arc::new(key));
                    }
                }
            }
        }
        let sign_dir = self.dir.join("signkeys");
        if sign_dir.is_dir() {
            for file in fs::read_dir(&sign_dir).map_err(io(&sign_dir))? {
                let path = file.map_err(io(&sign_dir))?.path();
                if let Some(key) = read_signkey(&path)? {
                    keys.signkeys.push(Arc::new(key));
                }
            }
        }
        keys.signkeys.sort_by_key(|k| k.start);
        *self.keys.write().expect("key store lock") = keys;
        Ok(())
    }

    /// Creates the keys the configuration needs from `now` to `now + LOOKAHEAD_SIGN`: for
    /// each `[coin_*]` section consecutive keys of `DURATION_WITHDRAW` overlapping by
    /// `OVERLAP_DURATION`, and signing keys of `SIGNKEY_DURATION`. Returns how many keys were
    /// created. RSA key generation is slow (tens to hundreds of milliseconds per key): it runs
    /// on the blocking pool, one key per core at a time; `progress` is told of each new key.
    ///
    /// Revoked keys (`revoked`: denomination hashes and signing keys the master key revoked)
    /// count as absent, so a revocation gets a successor at once (the C exchange's security
    /// modules do the same).
    pub async fn ensure(
        self: &Arc<Self>,
        config: &ExchangeConfig,
        now: Timestamp,
        revoked: &Revoked,
        progress: impl Fn(&str, Timestamp) + Send + Sync + 'static,
    ) -> Result<usize, KeyStoreError> {
        let horizon = now.saturating_add(config.lookahead_sign);
        let mut plan: Vec<(String, CipherConfig, Timestamp)> = Vec::new();
        {
            let keys = self.keys.read().expect("key store lock");
            for denom in &config.denominations {
                let starts: Vec<Timestamp> = keys
                    .denominations
                    .values()
                    .filter(|k| k.section == denom.section)
                    .filter(|k| !revoked.denominations.contains(&k.h_denom_pub))
                    .map(|k| k.start)
                    .collect();
                for start in schedule(
                    &starts,
                    now,
                    horizon,
                    denom.duration_withdraw,
                    config.overlap_duration,
                ) {
                    plan.push((denom.section.clone(), denom.cipher, start));
                }
            }
            let starts: Vec<Timestamp> = keys
                .signkeys
                .iter()
                .filter(|k| !revoked.signkeys.contains(&k.public))
                .map(|k| k.start)
                .collect();
            for start in schedule(
                &starts,
                now,
                horizon,
                config.signkey_duration,
                config.overlap_duration,
            ) {
                plan.push(("signkeys".to_owned(), CipherConfig::Cs, start));
            }
        }
        let created = plan.len();
        let progress = Arc::new(progress);
        let mut tasks = tokio::task::JoinSet::new();
        let limit = Arc::new(Semaphore::new(self.cores));
        for (section, cipher, start) in plan {
            let store = self.clone();
            let limit = limit.clone();
            let progress = progress.clone();
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                tokio::task::spawn_blocking(move || {
                    if section == "signkeys" {
                        store.create_signkey(start)
                    } else {
                        store.create_denomination(&section, cipher, start)
                    }
                    .inspect(|()| progress(&section, start))
                })
                .await
                .map_err(|e| KeyStoreError::Task(e.to_string()))?
            });
        }
        while let Some(result) = tasks.join_next().await {
            result.map_err(|e| KeyStoreError::Task(e.to_string()))??;
        }
        Ok(created)
    }

    fn create_denomination(
        &self,
        section: &str,
        cipher: CipherConfig,
        start: Timestamp,
    ) -> Result<(), KeyStoreError> {
        let dir = self.dir.join("denominations").join(section);
        create_private_dir(&self.dir.join("denominations"))?;
        create_private_dir(&dir)?;
        let (path, bytes) = match cipher {
            CipherConfig::Rsa { bits } => {
                let key = rsa::RsaPrivateKey::generate(bits)
                    .map_err(|e| KeyStoreError::Generation(e.to_string()))?;
                let der = key
                    .to_storage_bytes()
                    .map_err(|e| KeyStoreError::Generation(e.to_string()))?;
                (free_path(&dir, start, "rsa"), der)
            }
            CipherConfig::Cs => {
                let scalar =
                    cs::generate_private().map_err(|e| KeyStoreError::Generation(e.to_string()))?;
                (free_path(&dir, start, "cs"), scalar.to_vec())
            }
        };
        write_private_file(&path, &bytes)?;
        let key = read_denomination(section, &path)?.ok_or_else(|| KeyStoreError::Corrupt {
            path: path.clone(),
            why: "written key does not read back".into(),
        })?;
        self.keys
            .write()
            .expect("key store lock")
            .denominations
            .insert(key.h_denom_pub, Arc::new(key));
        Ok(())
    }

    fn create_signkey(&self, start: Timestamp) -> Result<(), KeyStoreError> {
        let dir = self.dir.join("signkeys");
        create_private_dir(&dir)?;
        let seed = Zeroizing::new(
            cardcash_crypto::random_bytes::<32>()
                .map_err(|e| KeyStoreError::Generation(e.to_string()))?,
        );
        let path = free_path(&dir, start, "eddsa");
        let start = start_of(&path).unwrap_or(start);
        write_private_file(&path, seed.as_slice())?;
        let private = EddsaPrivateKey::from_bytes(&seed);
        let mut keys = self.keys.write().expect("key store lock");
        keys.signkeys.push(Arc::new(OnlineSigningKey {
            start,
            public: private.public(),
            private,
        }));
        keys.signkeys.sort_by_key(|k| k.start);
        Ok(())
    }

    /// The public key of a security module.
    pub fn secmod_public(&self, which: Secmod) -> EddsaPublicKey {
        self.secmod[which as usize].public()
    }

    /// The security module's signature announcing denomination `key` with withdrawal period
    /// `duration_withdraw` (purpose 1250 or 1252).
    pub fn announce_denomination(
        &self,
        key: &DenominationKey,
        duration_withdraw: RelativeTime,
    ) -> EddsaSignature {
        match &key.public {
            DenominationPublic::Rsa(public) => self.secmod[Secmod::Rsa as usize].sign(
                &cardcash_crypto::purpose::RsaDenominationKeyAnnouncement::new(
                    public,
                    &key.section,
                    key.start,
                    duration_withdraw,
                ),
            ),
            DenominationPublic::Cs(public) => self.secmod[Secmod::Cs as usize].sign(
                &cardcash_crypto::purpose::CsDenominationKeyAnnouncement::new(
                    public,
                    &key.section,
                    key.start,
                    duration_withdraw,
                ),
            ),
        }
    }

    /// The security module's signature announcing signing key `key` (purpose 1251).
    pub fn announce_signkey(
        &self,
        key: &OnlineSigningKey,
        duration: RelativeTime,
    ) -> EddsaSignature {
        self.secmod[Secmod::Eddsa as usize].sign(
            &cardcash_crypto::purpose::SigningKeyAnnouncement {
                exchange_pub: key.public,
                anchor_time: key.start,
                duration,
            },
        )
    }

    /// Every denomination key, sorted by section and start.
    pub fn denominations(&self) -> Vec<Arc<DenominationKey>> {
        let mut all: Vec<_> = self
            .keys
            .read()
            .expect("key store lock")
            .denominations
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| (&a.section, a.start).cmp(&(&b.section, b.start)));
        all
    }

    /// The denomination key with hash `h`.
    pub fn denomination(&self, h: &HashCode) -> Option<Arc<DenominationKey>> {
        self.keys
            .read()
            .expect("key store lock")
            .denominations
            .get(h)
            .cloned()
    }

    /// Every online signing key, by start time.
    pub fn signkeys(&self) -> Vec<Arc<OnlineSigningKey>> {
        self.keys.read().expect("key store lock").signkeys.clone()
    }

    /// The signing key with public key `public`.
    pub fn signkey(&self, public: &EddsaPublicKey) -> Option<Arc<OnlineSigningKey>> {
        self.keys
            .read()
            .expect("key store lock")
            .signkeys
            .iter()
            .find(|k| &k.public == public)
            .cloned()
    }

    /// Signs `message` with the signing key `public`.
    pub fn sign_with(
        &self,
        public: &EddsaPublicKey,
        message: &impl SignedMessage,
    ) -> Option<EddsaSignature> {
        self.signkey(public).map(|k| k.private.sign(message))
    }

    /// Clause-Schnorr: the two public nonces `R0, R1` for a session `nonce` (`/csr-withdraw`).
    pub fn cs_r_pub(
        &self,
        h_denom_pub: &HashCode,
        nonce: &[u8; 32],
    ) -> Result<[[u8; 32]; 2], KeyStoreError> {
        self.cs_r_pub_seeded(h_denom_pub, nonce, CS_WITHDRAW_SEED)
    }

    /// Clause-Schnorr: `R0, R1` of a refresh's session `nonce` (`/csr-melt`, and the fresh coins
    /// a reveal re-derives), from the melt seed `"rm"`.
    pub fn cs_r_pub_for_melt(
        &self,
        h_denom_pub: &HashCode,
        nonce: &[u8; 32],
    ) -> Result<[[u8; 32]; 2], KeyStoreError> {
        self.cs_r_pub_seeded(h_denom_pub, nonce, cs::R_SEED_MELT)
    }

    fn cs_r_pub_seeded(
        &self,
        h_denom_pub: &HashCode,
        nonce: &[u8; 32],
        seed: &str,
    ) -> Result<[[u8; 32]; 2], KeyStoreError> {
        let key = self
            .denomination(h_denom_pub)
            .ok_or(KeyStoreError::UnknownDenomination(*h_denom_pub))?;
        match &key.private {
            DenominationPrivate::Cs(private) => {
                let r = cs::r_derive(nonce, seed, private);
                Ok([cs::public(&r[0]), cs::public(&r[1])])
            }
            DenominationPrivate::Rsa(_) => Err(KeyStoreError::BadPlanchet(
                "not a Clause-Schnorr denomination".into(),
            )),
        }
    }

    /// Signs a batch of planchets blindly, in parallel on all cores; the result is in request
    /// order. Fails as a whole if one planchet cannot be signed (the caller checked the
    /// denominations before, so that means a malformed envelope).
    pub async fn sign_blinded(
        self: &Arc<Self>,
        planchets: Vec<(HashCode, BlindedPlanchet)>,
    ) -> Result<Vec<BlindSignature>, KeyStoreError> {
        self.sign_blinded_seeded(planchets, CS_WITHDRAW_SEED).await
    }

    /// [`Self::sign_blinded`] for the fresh coins of a reveal: Clause-Schnorr envelopes are
    /// signed with the `R` values of the refresh domain (seed `"rm"`, as `/csr-melt` gave
    /// them); RSA is the same.
    pub async fn sign_blinded_for_melt(
        self: &Arc<Self>,
        planchets: Vec<(HashCode, BlindedPlanchet)>,
    ) -> Result<Vec<BlindSignature>, KeyStoreError> {
        self.sign_blinded_seeded(planchets, cs::R_SEED_MELT).await
    }

    async fn sign_blinded_seeded(
        self: &Arc<Self>,
        planchets: Vec<(HashCode, BlindedPlanchet)>,
        seed: &'static str,
    ) -> Result<Vec<BlindSignature>, KeyStoreError> {
        let n = planchets.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut resolved = Vec::with_capacity(n);
        for (h, planchet) in planchets {
            let key = self
                .denomination(&h)
                .ok_or(KeyStoreError::UnknownDenomination(h))?;
            resolved.push((key, planchet));
        }
        let chunk = n.div_ceil(self.cores).max(1);
        let mut chunks = Vec::new();
        let mut iter = resolved.into_iter();
        loop {
            let part: Vec<_> = iter.by_ref().take(chunk).collect();
            if part.is_empty() {
                break;
            }
            chunks.push(part);
        }
        let mut handles = Vec::with_capacity(chunks.len());
        for part in chunks {
            let permit = self
                .signers
                .acquire()
                .await
                .map_err(|e| KeyStoreError::Task(e.to_string()))?;
            permit.forget();
            let store = self.clone();
            handles.push(tokio::task::spawn_blocking(move || {
                let result = part
                    .iter()
                    .map(|(key, planchet)| sign_one(key, planchet, seed))
                    .collect::<Result<Vec<_>, _>>();
                store.signers.add_permits(1);
                result
            }));
        }
        let mut out = Vec::with_capacity(n);
        for handle in handles {
            out.extend(
                handle
                    .await
                    .map_err(|e| KeyStoreError::Task(e.to_string()))??,
            );
        }
        Ok(out)
    }
}

fn sign_one(
    key: &DenominationKey,
    planchet: &BlindedPlanchet,
    seed: &str,
) -> Result<BlindSignature, KeyStoreError> {
    match (&key.private, planchet) {
        (DenominationPrivate::Rsa(private), BlindedPlanchet::Rsa(blinded)) => {
            rsa::sign_blinded(private, blinded)
                .map(BlindSignature::Rsa)
                .map_err(|e| KeyStoreError::BadPlanchet(e.to_string()))
        }
        (DenominationPrivate::Cs(private), BlindedPlanchet::Cs { nonce, c }) => {
            let r = cs::r_derive(nonce, seed, private);
            let (b, s) = cs::sign(private, &r, nonce, c);
            Ok(BlindSignature::Cs { b, s })
        }
        _ => Err(KeyStoreError::BadPlanchet(
            "the envelope's cipher is not the denomination's".into(),
        )),
    }
}

impl Revoked {
    /// The revoked keys of the database's key material.
    pub fn from_material(material: &crate::db::KeyMaterial) -> Self {
        Self {
            denominations: material
                .denominations
                .iter()
                .filter(|d| d.revocation.is_some())
                .map(|d| d.h_denom_pub)
                .collect(),
            signkeys: material
                .signkeys
                .iter()
                .filter(|k| k.revocation.is_some())
                .map(|k| k.exchange_pub)
                .collect(),
        }
    }
}

/// The start times of the keys to create so that keys cover `[now, horizon]`: the first at
/// `now` if no existing key covers it, each next one `duration - overlap` after the latest.
fn schedule(
    existing: &[Timestamp],
    now: Timestamp,
    horizon: Timestamp,
    duration: RelativeTime,
    overlap: RelativeTime,
) -> Vec<Timestamp> {
    let step = RelativeTime::from_micros(
        duration
            .as_micros()
            .saturating_sub(overlap.as_micros())
            .max(1_000_000),
    );
    let mut out = Vec::new();
    let covers_now = existing
        .iter()
        .any(|s| *s <= now && s.saturating_add(duration) > now);
    if !covers_now {
        out.push(now.round_down_to_secs());
    }
    // Continue after the latest key, existing or just planned.
    let mut latest = existing.iter().copied().chain(out.iter().copied()).max();
    while let Some(l) = latest {
        let next = l.saturating_add(step).round_down_to_secs();
        if next > horizon || next.is_never() {
            break;
        }
        out.push(next);
        latest = Some(next);
    }
    out
}

/// `{dir}/{start}.{ext}`, or an earlier second's name if a (revoked) key of that second
/// exists: a key starting a moment earlier is valid at once, one starting later would leave a
/// gap without a usable key.
fn free_path(dir: &Path, start: Timestamp, ext: &str) -> PathBuf {
    let mut secs = start.as_secs();
    loop {
        let path = dir.join(format!("{secs}.{ext}"));
        if !path.exists() || secs == 0 {
            return path;
        }
        secs -= 1;
    }
}

/// A 32-byte EdDSA seed from `path`, created (0600) if missing.
fn load_or_create_seed(path: &Path) -> Result<EddsaPrivateKey, KeyStoreError> {
    if path.exists() {
        let bytes = Zeroizing::new(fs::read(path).map_err(io(path))?);
        return EddsaPrivateKey::from_slice(&bytes).map_err(|_| KeyStoreError::Corrupt {
            path: path.to_owned(),
            why: "not a 32-byte seed".into(),
        });
    }
    let seed = Zeroizing::new(
        cardcash_crypto::random_bytes::<32>()
            .map_err(|e| KeyStoreError::Generation(e.to_string()))?,
    );
    write_private_file(path, seed.as_slice())?;
    Ok(EddsaPrivateKey::from_bytes(&seed))
}

fn create_private_dir(dir: &Path) -> Result<(), KeyStoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(io(dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` readable only by the owner, atomically (a crash leaves either no
/// file or the whole key).
fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), KeyStoreError> {
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}

fn start_of(path: &Path) -> Option<Timestamp> {
    path.file_stem()?
        .to_str()?
        .parse::<u64>()
        .ok()
        .map(Timestamp::from_secs)
}

fn read_denomination(section: &str, path: &Path) -> Result<Option<DenominationKey>, KeyStoreError> {
    let ext = path.extension().and_then(|e| e.to_str());
    if !matches!(ext, Some("rsa" | "cs")) {
        return Ok(None);
    }
    let corrupt = |why: String| KeyStoreError::Corrupt {
        path: path.to_owned(),
        why,
    };
    let start = start_of(path).ok_or_else(|| corrupt("file name is not a start time".into()))?;
    let bytes = Zeroizing::new(fs::read(path).map_err(io(path))?);
    let (public, private) = if ext == Some("rsa") {
        let key =
            rsa::RsaPrivateKey::from_storage_bytes(&bytes).map_err(|e| corrupt(e.to_string()))?;
        (
            DenominationPublic::Rsa(key.public().clone()),
            DenominationPrivate::Rsa(key),
        )
    } else {
        let scalar: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("a CS key has 32 bytes".into()))?;
        (
            DenominationPublic::Cs(cs::public(&scalar)),
            DenominationPrivate::Cs(Zeroizing::new(scalar)),
        )
    };
    Ok(Some(DenominationKey {
        section: section.to_owned(),
        start,
        h_denom_pub: public.hash(),
        public,
        private,
    }))
}

fn read_signkey(path: &Path) -> Result<Option<OnlineSigningKey>, KeyStoreError> {
    if path.extension().and_then(|e| e.to_str()) != Some("eddsa") {
        return Ok(None);
    }
    let corrupt = |why: &str| KeyStoreError::Corrupt {
        path: path.to_owned(),
        why: why.to_owned(),
    };
    let start = start_of(path).ok_or_else(|| corrupt("file name is not a start time"))?;
    let bytes = Zeroizing::new(fs::read(path).map_err(io(path))?);
    let private = EddsaPrivateKey::from_slice(&bytes).map_err(|_| corrupt("not a 32-byte seed"))?;
    Ok(Some(OnlineSigningKey {
        start,
        public: private.public(),
        private,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: u64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    #[test]
    fn schedule_covers_now_to_horizon_with_overlap() {
        let d = RelativeTime::from_secs(100);
        let o = RelativeTime::from_secs(10);
        assert_eq!(
            schedule(&[], ts(1000), ts(1300), d, o),
            vec![ts(1000), ts(1090), ts(1180), ts(1270)]
        );
        // Existing keys are continued, not duplicated.
        assert_eq!(
            schedule(&[ts(1000), ts(1090)], ts(1050), ts(1300), d, o),
            vec![ts(1180), ts(1270)]
        );
        // Keys that all expired: a fresh one starts now.
        assert_eq!(
            schedule(&[ts(10)], ts(1000), ts(1000), d, o),
            vec![ts(1000)]
        );
        // The key covering now was revoked (left out by the caller): a successor starts now,
        // the later keys stay.
        assert_eq!(
            schedule(&[ts(1090)], ts(1050), ts(1300), d, o),
            vec![ts(1050), ts(1180), ts(1270)]
        );
        // Nothing to do when the horizon is covered.
        assert!(schedule(&[ts(1000), ts(1090)], ts(1000), ts(1100), d, o).is_empty());
    }

    #[tokio::test]
    async fn keys_survive_a_restart_and_sign() {
        let dir = tempfile::tempdir().unwrap();
        let currency: cardcash_util::Currency = "KUDOS".parse().unwrap();
        let mut config = ExchangeConfig::new(currency, "sqlite::memory:", dir.path().into());
        config.lookahead_sign = RelativeTime::from_secs(3600);
        let coin = |section: &str, cipher| crate::config::DenominationConfig {
            section: section.into(),
            cipher,
            value: "KUDOS:1".parse().unwrap(),
            fee_withdraw: "KUDOS:0".parse().unwrap(),
            fee_deposit: "KUDOS:0".parse().unwrap(),
            fee_refresh: "KUDOS:0".parse().unwrap(),
            fee_refund: "KUDOS:0".parse().unwrap(),
            duration_withdraw: RelativeTime::from_secs(7200),
            duration_spend: RelativeTime::from_secs(7200),
            duration_legal: RelativeTime::from_secs(7200),
        };
        config.denominations = vec![
            coin("coin_rsa", CipherConfig::Rsa { bits: 1024 }),
            coin("coin_cs", CipherConfig::Cs),
        ];
        let store = Arc::new(KeyStore::open(dir.path()).unwrap());
        let created = store
            .ensure(&config, ts(1_000_000), &Revoked::default(), |_, _| {})
            .await
            .unwrap();
        assert_eq!(
            created, 3,
            "one key per denomination type and one signing key"
        );
        assert_eq!(
            store
                .ensure(&config, ts(1_000_000), &Revoked::default(), |_, _| {})
                .await
                .unwrap(),
            0
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let file = dir.path().join("signkeys/1000000.eddsa");
            assert_eq!(
                fs::metadata(file).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }

        let reopened = Arc::new(KeyStore::open(dir.path()).unwrap());
        let before: Vec<_> = store
            .denominations()
            .iter()
            .map(|k| k.h_denom_pub)
            .collect();
        let after: Vec<_> = reopened
            .denominations()
            .iter()
            .map(|k| k.h_denom_pub)
            .collect();
        assert_eq!(before, after);
        assert_eq!(store.signkeys()[0].public, reopened.signkeys()[0].public);

        // RSA: the blind signature unblinds to a valid signature of the coin.
        let rsa_key = reopened
            .denominations()
            .into_iter()
            .find(|k| k.section == "coin_rsa")
            .unwrap();
        let DenominationPublic::Rsa(public) = &rsa_key.public else {
            panic!("RSA key expected")
        };
        let bks = rsa::BlindingKeySecret::generate().unwrap();
        let msg = [7u8; 64];
        let blinded = rsa::blind(public, &msg, &bks).unwrap();
        let sigs = reopened
            .sign_blinded(vec![(rsa_key.h_denom_pub, BlindedPlanchet::Rsa(blinded))])
            .await
            .unwrap();
        let BlindSignature::Rsa(blind_sig) = &sigs[0] else {
            panic!("RSA signature expected")
        };
        let sig = rsa::unblind(public, blind_sig, &bks).unwrap();
        rsa::verify(public, &msg, &sig).unwrap();

        // CS: R values from the store, the wallet blinds, the store signs, the wallet unblinds.
        let cs_key = reopened
            .denominations()
            .into_iter()
            .find(|k| k.section == "coin_cs")
            .unwrap();
        let DenominationPublic::Cs(cs_pub) = cs_key.public else {
            panic!("CS key expected")
        };
        let nonce = [3u8; 32];
        let r_pub = reopened.cs_r_pub(&cs_key.h_denom_pub, &nonce).unwrap();
        let secrets = cs::blinding_secrets(&[5u8; 32]);
        let (c, r_blind) = cs::blind(&secrets, &r_pub, &cs_pub, &msg).unwrap();
        let sigs = reopened
            .sign_blinded(vec![(cs_key.h_denom_pub, BlindedPlanchet::Cs { nonce, c })])
            .await
            .unwrap();
        let BlindSignature::Cs { b, s } = sigs[0] else {
            panic!("CS signature expected")
        };
        let s = cs::unblind(&s, &secrets[b as usize].0);
        cs::verify(&cs_pub, &r_blind[b as usize], &s, &msg).unwrap();

        // A planchet of the wrong cipher is refused, an unknown denomination too.
        assert!(matches!(
            reopened
                .sign_blinded(vec![(cs_key.h_denom_pub, BlindedPlanchet::Rsa(vec![1, 2]))])
                .await,
            Err(KeyStoreError::BadPlanchet(_))
        ));
        assert!(matches!(
            reopened
                .sign_blinded(vec![(
                    HashCode::from_bytes([0; 64]),
                    BlindedPlanchet::Rsa(vec![1])
                )])
                .await,
            Err(KeyStoreError::UnknownDenomination(_))
        ));
    }
}
