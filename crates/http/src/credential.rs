//! Verification of hashed secrets (account passwords, terminal secrets) for every service.
//!
//! An argon2id verification costs tens of milliseconds of CPU and 19 MiB of memory on purpose.
//! Run naively — one blocking task per request — 100 concurrent wrong passwords meant 100
//! blocking threads each holding its own 19 MiB, and a process that grew by gigabytes. Hence:
//!
//! - **Bounded.** Every hash runs on the blocking pool behind a semaphore; by default one
//!   process-wide semaphore with one permit per core (hashing is CPU-bound; more at once only
//!   adds memory). Waiting requests hold no memory beyond their future.
//! - **Cached, briefly.** After a successful verification the pair (subject, secret) is
//!   remembered for [`VerifierConfig::cache_ttl`] (5 minutes by default), so a busy terminal
//!   pays the hash once, not per request. The cache holds no secret: an entry is the HMAC of the
//!   presented secret under a random per-verifier key, and the HMAC of the stored PHC string, so
//!   a changed stored hash (new password, rotated terminal secret) invalidates it. Only
//!   *successful* verifications are cached, and only someone who knows a valid secret can add
//!   an entry, so wrong guesses can neither fill the cache nor evict good entries. The cache has
//!   a fixed number of entries (one per subject); when full, expired entries go first, then the
//!   oldest. [`CredentialVerifier::invalidate`] drops a subject at once (deactivation).
//! - **One hash per miss, not per request.** When the cache entry of a busy subject expires,
//!   every request of that moment misses it. Requests presenting the same (subject, secret)
//!   wait for the first one's verification and then read the cache (single flight); only
//!   different secrets hash on their own. Without it a terminal's burst after each expiry paid
//!   the hash (and its 19 MiB, kept by the allocator per blocking thread) once per request.
//! - **Uniform cost.** An unknown subject (`stored = None`) is verified against a fixed dummy
//!   hash with the same parameters ([`cardcash_crypto::password::dummy_hash`]), so the
//!   existence of an account or terminal cannot be learned from response times.
//!
//! The hashing itself is `cardcash_crypto::password` (the only place argon2 is used). Looking
//! up the stored hash is the service's job; this module never sees a database.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use cardcash_crypto::CryptoError;
use cardcash_crypto::mac::hmac_sha512;
use cardcash_crypto::password;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use subtle::ConstantTimeEq as _;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::Metrics;

/// Longest secret that is hashed at all; longer ones are refused (after the same work as any
/// wrong secret). Headers are bounded anyway; this keeps hashing cost independent of input.
pub const MAX_SECRET_LEN: usize = 1024;

/// Default lifetime of a cached verification.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5 * 60);

/// Default number of cached verifications (one per subject).
pub const DEFAULT_CACHE_ENTRIES: usize = 4096;

/// The number of hashes that may run at once in this process by default: one per core.
pub fn default_max_concurrent() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}

/// The process-wide bound on concurrent hashes, shared by every verifier made with
/// [`CredentialVerifier::new`] and by [`hash_secret`] (all services of `cardcash demo` share
/// the same cores).
fn process_limiter() -> Arc<Semaphore> {
    static LIMITER: OnceLock<Arc<Semaphore>> = OnceLock::new();
    LIMITER
        .get_or_init(|| Arc::new(Semaphore::new(default_max_concurrent())))
        .clone()
}

/// Settings of a [`CredentialVerifier`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifierConfig {
    /// Hashes running at once; `None` shares the process-wide bound (one per core).
    pub max_concurrent: Option<usize>,
    /// How long a successful verification is remembered.
    pub cache_ttl: Duration,
    /// Most remembered verifications.
    pub cache_entries: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            max_concurrent: None,
            cache_ttl: DEFAULT_CACHE_TTL,
            cache_entries: DEFAULT_CACHE_ENTRIES,
        }
    }
}

/// Counters of a verifier (also exported as metrics by [`CredentialVerifier::register_metrics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifierStats {
    /// Hashes computed (one per verification that missed the cache, unknown subjects included).
    pub hashes: u64,
    /// Verifications answered from the cache.
    pub cache_hits: u64,
    /// Most hashes of this verifier that were running at the same moment.
    pub peak_concurrent: u64,
    /// Entries in the cache now.
    pub cached: usize,
}

struct CacheEntry {
    secret_tag: [u8; 64],
    stored_tag: [u8; 64],
    verified_at: Instant,
}

struct Inner {
    limiter: Arc<Semaphore>,
    /// Random key of the cache's HMACs: the cache is useless without it.
    key: [u8; 32],
    cache: Mutex<HashMap<String, CacheEntry>>,
    /// Verifications running now, by the presented secret's tag: requests with the same tag
    /// wait on its lock instead of hashing again. An entry lives while a request holds or
    /// waits for it; the count says how many do (kept under this map's lock, not read from
    /// the `Arc`'s reference count, which a releasing guard lowers only after it has already
    /// let the next request in).
    in_progress: Mutex<HashMap<[u8; 64], Flight>>,
    ttl: Duration,
    max_entries: usize,
    hashes: Counter,
    cache_hits: Counter,
    in_flight: Gauge,
    peak: Gauge,
    peak_value: AtomicU64,
}

/// Verifies presented secrets against stored argon2id PHC strings: bounded, cached, uniform in
/// cost. Cheap to clone (one shared state).
#[derive(Clone)]
pub struct CredentialVerifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for CredentialVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialVerifier")
            .field("ttl", &self.inner.ttl)
            .field("max_entries", &self.inner.max_entries)
            .finish_non_exhaustive()
    }
}

impl Default for CredentialVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl CredentialVerifier {
    /// A verifier with the default settings, sharing the process-wide hash bound.
    pub fn new() -> Self {
        Self::with_config(VerifierConfig::default())
    }

    pub fn with_config(config: VerifierConfig) -> Self {
        let limiter = match config.max_concurrent {
            Some(n) => Arc::new(Semaphore::new(n.max(1))),
            None => process_limiter(),
        };
        // Without OS randomness the key is fixed, which only weakens the cache's secrecy
        // against someone who can read process memory (who could read the key as well).
        let key = cardcash_crypto::random_bytes::<32>().unwrap_or([0x42; 32]);
        Self {
            inner: Arc::new(Inner {
                limiter,
                key,
                cache: Mutex::new(HashMap::new()),
                in_progress: Mutex::new(HashMap::new()),
                ttl: config.cache_ttl,
                max_entries: config.cache_entries.max(1),
                hashes: Counter::default(),
                cache_hits: Counter::default(),
                in_flight: Gauge::default(),
                peak: Gauge::default(),
                peak_value: AtomicU64::new(0),
            }),
        }
    }

    /// Exports the counters into a service's registry (`credential_hashes_total`,
    /// `credential_cache_hits_total`, `credential_hashes_in_flight`,
    /// `credential_hashes_in_flight_max`).
    pub fn register_metrics(&self, metrics: &mut Metrics) {
        let inner = &self.inner;
        metrics.register(
            "credential_hashes",
            "Password/secret hashes computed (cache misses, unknown users included)",
            inner.hashes.clone(),
        );
        metrics.register(
            "credential_cache_hits",
            "Credential verifications answered from the short-lived cache",
            inner.cache_hits.clone(),
        );
        metrics.register(
            "credential_hashes_in_flight",
            "Password/secret hashes running now",
            inner.in_flight.clone(),
        );
        metrics.register(
            "credential_hashes_in_flight_max",
            "Most password/secret hashes that ran at once since start",
            inner.peak.clone(),
        );
    }

    /// Whether `secret` is the secret of `subject`, whose stored PHC string is `stored` (`None`
    /// for an unknown subject: the same work is done, and the answer is `false`).
    ///
    /// A failure of the blocking task counts as a mismatch (logged): authentication fails closed.
    pub async fn verify(&self, subject: &str, secret: &str, stored: Option<&str>) -> bool {
        let inner = &self.inner;
        let tags = stored.map(|phc| (self.secret_tag(subject, secret), self.stored_tag(phc)));
        if let Some((secret_tag, stored_tag)) = &tags
            && self.cached(subject, secret_tag, stored_tag)
        {
            inner.cache_hits.inc();
            return true;
        }
        // Single flight: wait for a verification of the same secret already running, then
        // look at the cache again (a success is there now; a failure is hashed again, so wrong
        // guesses cost every guesser the full price).
        let _flight = match &tags {
            Some((secret_tag, stored_tag)) => {
                let (ticket, lock) = self.flight(secret_tag);
                let flight = FlightGuard {
                    _guard: lock.lock_owned().await,
                    _ticket: ticket,
                };
                if self.cached(subject, secret_tag, stored_tag) {
                    inner.cache_hits.inc();
                    return true;
                }
                Some(flight)
            }
            None => None,
        };
        let acceptable = secret.len() <= MAX_SECRET_LEN;
        let phc = match stored {
            Some(phc) if acceptable => phc.to_owned(),
            _ => password::dummy_hash().to_owned(),
        };
        // Over-long secrets are hashed truncated: the same cost, and a certain mismatch below.
        let presented = secret.as_bytes()[..secret.len().min(MAX_SECRET_LEN)].to_vec();
        let matched = self
            .run_bounded(move || password::verify(&presented, &phc))
            .await;
        let verified = matches!(matched, Some(true)) && acceptable && stored.is_some();
        if verified && let Some((secret_tag, stored_tag)) = tags {
            self.remember(subject, secret_tag, stored_tag);
        }
        verified
    }

    /// Hashes a new secret (account creation, password change, terminal registration) under the
    /// same bound as verifications.
    pub async fn hash(&self, secret: &str) -> Result<String, CryptoError> {
        hash_bounded(&self.inner.limiter, secret).await
    }

    /// Forgets the cached verification of `subject` (deactivation, deletion, password change
    /// from another process), so its next request is verified against the stored hash again.
    pub fn invalidate(&self, subject: &str) {
        self.lock().remove(subject);
    }

    /// Forgets every cached verification.
    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn stats(&self) -> VerifierStats {
        VerifierStats {
            hashes: self.inner.hashes.get(),
            cache_hits: self.inner.cache_hits.get(),
            peak_concurrent: self.inner.peak_value.load(Ordering::Relaxed),
            cached: self.lock().len(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CacheEntry>> {
        self.inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn secret_tag(&self, subject: &str, secret: &str) -> [u8; 64] {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        let mut message = Vec::with_capacity(8 + subject.len() + secret.len());
        message.extend_from_slice(&(subject.len() as u64).to_be_bytes());
        message.extend_from_slice(subject.as_bytes());
        message.extend_from_slice(secret.as_bytes());
        hmac_sha512(&self.inner.key, &message)
    }

    /// The lock of verifications of `tag` (created on first use) and a ticket that counts
    /// this request among its users until dropped (also when the request is cancelled while
    /// it waits), so the map holds only the tags of requests in flight.
    fn flight(&self, tag: &[u8; 64]) -> (FlightTicket<'_>, Arc<tokio::sync::Mutex<()>>) {
        let mut map = self
            .inner
            .in_progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let flight = map.entry(*tag).or_default();
        flight.users += 1;
        let lock = flight.lock.clone();
        (
            FlightTicket {
                verifier: self,
                tag: *tag,
            },
            lock,
        )
    }

    fn stored_tag(&self, phc: &str) -> [u8; 64] {
        hmac_sha512(&self.inner.key, phc.as_bytes())
    }

    fn cached(&self, subject: &str, secret_tag: &[u8; 64], stored_tag: &[u8; 64]) -> bool {
        let cache = self.lock();
        cache.get(subject).is_some_and(|entry| {
            let same: bool =
                (entry.secret_tag.ct_eq(secret_tag) & entry.stored_tag.ct_eq(stored_tag)).into();
            same && entry.verified_at.elapsed() < self.inner.ttl
        })
    }

    fn remember(&self, subject: &str, secret_tag: [u8; 64], stored_tag: [u8; 64]) {
        let ttl = self.inner.ttl;
        let mut cache = self.lock();
        if cache.len() >= self.inner.max_entries && !cache.contains_key(subject) {
            cache.retain(|_, entry| entry.verified_at.elapsed() < ttl);
            if cache.len() >= self.inner.max_entries
                && let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, entry)| entry.verified_at)
                    .map(|(name, _)| name.clone())
            {
                cache.remove(&oldest);
            }
        }
        cache.insert(
            subject.to_owned(),
            CacheEntry {
                secret_tag,
                stored_tag,
                verified_at: Instant::now(),
            },
        );
    }

    /// Runs `work` on the blocking pool once a permit is free; `None` if the task failed.
    async fn run_bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let inner = &self.inner;
        // The semaphore is never closed, so acquiring only fails if it were.
        let _permit = inner.limiter.acquire().await.ok()?;
        inner.hashes.inc();
        let now = inner.in_flight.inc() + 1;
        inner.peak_value.fetch_max(now as u64, Ordering::Relaxed);
        inner
            .peak
            .set(inner.peak_value.load(Ordering::Relaxed) as i64);
        let result = tokio::task::spawn_blocking(work).await;
        inner.in_flight.dec();
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                tracing::error!(error = %e, "credential hashing task failed");
                None
            }
        }
    }
}

/// One tag's lock and how many requests hold or wait for it.
#[derive(Default)]
struct Flight {
    lock: Arc<tokio::sync::Mutex<()>>,
    users: usize,
}

/// A request's place among the users of a tag's flight; dropping it removes the entry when
/// it was the last.
struct FlightTicket<'a> {
    verifier: &'a CredentialVerifier,
    tag: [u8; 64],
}

impl Drop for FlightTicket<'_> {
    fn drop(&mut self) {
        let mut map = self
            .verifier
            .inner
            .in_progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(flight) = map.get_mut(&self.tag) {
            flight.users -= 1;
            if flight.users == 0 {
                map.remove(&self.tag);
            }
        }
    }
}

/// Holds a verification's flight lock and its ticket (fields drop in order: the lock is
/// released first, then the request stops counting as a user).
struct FlightGuard<'a> {
    _guard: tokio::sync::OwnedMutexGuard<()>,
    _ticket: FlightTicket<'a>,
}

/// Hashes a new secret under the process-wide bound (for callers without a verifier at hand).
pub async fn hash_secret(secret: &str) -> Result<String, CryptoError> {
    hash_bounded(&process_limiter(), secret).await
}

async fn hash_bounded(limiter: &Semaphore, secret: &str) -> Result<String, CryptoError> {
    let _permit = limiter
        .acquire()
        .await
        .map_err(|_| CryptoError::Kdf("hashing is shut down"))?;
    let secret = secret.as_bytes().to_vec();
    tokio::task::spawn_blocking(move || password::hash(&secret))
        .await
        .map_err(|_| CryptoError::Kdf("hashing task failed"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(entries: usize, ttl: Duration) -> CredentialVerifier {
        CredentialVerifier::with_config(VerifierConfig {
            max_concurrent: Some(2),
            cache_ttl: ttl,
            cache_entries: entries,
        })
    }

    #[tokio::test]
    async fn verifies_and_caches_only_successes() {
        let v = verifier(16, DEFAULT_CACHE_TTL);
        let phc = v.hash("right").await.unwrap();
        assert!(!v.verify("alice", "wrong", Some(&phc)).await);
        assert!(!v.verify("alice", "wrong", Some(&phc)).await);
        assert_eq!(v.stats().hashes, 2, "wrong secrets are hashed every time");
        assert_eq!(v.stats().cached, 0);
        assert!(v.verify("alice", "right", Some(&phc)).await);
        assert!(v.verify("alice", "right", Some(&phc)).await);
        let stats = v.stats();
        assert_eq!((stats.hashes, stats.cache_hits, stats.cached), (3, 1, 1));
        // A cached entry does not make another secret or another subject pass.
        assert!(!v.verify("alice", "wrong", Some(&phc)).await);
        assert!(!v.verify("bob", "right", None).await);
        assert_eq!(v.stats().hashes, 5);
    }

    /// After an expiry, a burst of requests with the same valid secret costs one hash.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_of_one_secret_hash_once() {
        let v = verifier(16, DEFAULT_CACHE_TTL);
        let phc = password::hash(b"pw").unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (v, phc) = (v.clone(), phc.clone());
            tasks.spawn(async move { v.verify("terminal", "pw", Some(&phc)).await });
        }
        while let Some(ok) = tasks.join_next().await {
            assert!(ok.unwrap());
        }
        let stats = v.stats();
        assert_eq!((stats.hashes, stats.cache_hits), (1, 7), "{stats:?}");
        assert!(
            v.inner.in_progress.lock().unwrap().is_empty(),
            "no lock left behind"
        );
        // Wrong secrets are not coalesced into a success, and each pays its hash.
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let (v, phc) = (v.clone(), phc.clone());
            tasks.spawn(async move { v.verify("other", "nope", Some(&phc)).await });
        }
        while let Some(ok) = tasks.join_next().await {
            assert!(!ok.unwrap());
        }
        assert_eq!(v.stats().hashes, 5);
        assert!(v.inner.in_progress.lock().unwrap().is_empty());
    }

    /// A request cancelled while it waits for another's verification of the same secret
    /// leaves nothing behind, and the one it waited for still counts and caches.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiter_cancelled_leaves_no_lock_behind() {
        let v = verifier(16, DEFAULT_CACHE_TTL);
        let phc = password::hash(b"pw").unwrap();
        let tag = v.secret_tag("terminal", "pw");
        // Hold the tag's lock as a running verification would.
        let (ticket, lock) = v.flight(&tag);
        let held = lock.lock_owned().await;
        let waiter = {
            let (v, phc) = (v.clone(), phc.clone());
            tokio::spawn(async move { v.verify("terminal", "pw", Some(&phc)).await })
        };
        // The waiter is counted once it asked for the lock.
        let counted = || {
            v.inner
                .in_progress
                .lock()
                .unwrap()
                .get(&tag)
                .map(|f| f.users)
        };
        for _ in 0..1000 {
            if counted() == Some(2) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(counted(), Some(2));
        waiter.abort();
        assert!(waiter.await.unwrap_err().is_cancelled());
        assert_eq!(counted(), Some(1));
        drop(held);
        drop(ticket);
        assert!(v.inner.in_progress.lock().unwrap().is_empty());
        assert!(v.verify("terminal", "pw", Some(&phc)).await);
        assert!(v.inner.in_progress.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_changed_stored_hash_invalidates() {
        let v = verifier(16, DEFAULT_CACHE_TTL);
        let old = v.hash("one").await.unwrap();
        let new = v.hash("two").await.unwrap();
        assert!(v.verify("t", "one", Some(&old)).await);
        assert!(!v.verify("t", "one", Some(&new)).await, "rotated secret");
        assert!(v.verify("t", "two", Some(&new)).await);
        let hashes = v.stats().hashes;
        v.invalidate("t");
        assert!(v.verify("t", "two", Some(&new)).await);
        assert_eq!(v.stats().hashes, hashes + 1, "invalidated: hashed again");
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire() {
        let v = verifier(16, Duration::from_secs(300));
        let phc = password::hash(b"pw").unwrap();
        assert!(v.verify("a", "pw", Some(&phc)).await);
        tokio::time::advance(Duration::from_secs(299)).await;
        assert!(v.verify("a", "pw", Some(&phc)).await);
        assert_eq!(v.stats().cache_hits, 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(v.verify("a", "pw", Some(&phc)).await);
        assert_eq!(v.stats().cache_hits, 1, "expired: hashed again");
        assert_eq!(v.stats().hashes, 2);
    }

    #[tokio::test]
    async fn bounded_cache_evicts_the_oldest() {
        let v = verifier(2, DEFAULT_CACHE_TTL);
        let phc = password::hash(b"pw").unwrap();
        for subject in ["a", "b", "c"] {
            assert!(v.verify(subject, "pw", Some(&phc)).await);
        }
        assert_eq!(v.stats().cached, 2);
        let hashes = v.stats().hashes;
        assert!(v.verify("c", "pw", Some(&phc)).await);
        assert_eq!(v.stats().hashes, hashes, "the newest entry stayed");
        assert!(v.verify("a", "pw", Some(&phc)).await);
        assert_eq!(v.stats().hashes, hashes + 1, "the oldest entry was evicted");
    }

    #[tokio::test]
    async fn unknown_and_overlong_cost_one_hash_and_fail() {
        let v = verifier(16, DEFAULT_CACHE_TTL);
        assert!(!v.verify("nobody", "x", None).await);
        assert_eq!(v.stats().hashes, 1);
        let phc = password::hash(b"pw").unwrap();
        let long = "pw".repeat(MAX_SECRET_LEN);
        assert!(!v.verify("a", &long, Some(&phc)).await);
        assert_eq!(v.stats().hashes, 2);
    }

    #[test]
    fn the_cache_holds_no_secret() {
        let v = verifier(16, DEFAULT_CACHE_TTL);
        let tag = v.secret_tag("alice", "hunter2");
        assert_ne!(tag, v.secret_tag("alice", "hunter3"));
        assert_ne!(tag, v.secret_tag("alic", "ehunter2"));
        let other = verifier(16, DEFAULT_CACHE_TTL);
        assert_ne!(
            tag,
            other.secret_tag("alice", "hunter2"),
            "keyed per verifier"
        );
    }
}
