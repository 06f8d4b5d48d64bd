//! ARCHITECTURE.md's dependency rules, enforced on `cargo metadata` (CI runs this with the
//! other tests):
//!
//! 1. **Protocol crates do no IO**: nothing `util`, `crypto` or `api` links (their normal
//!    dependencies, transitively) is an IO crate, and their tests use none directly either.
//! 2. **Only `crypto` touches primitives**: no other workspace crate names a cryptographic
//!    primitive among its direct dependencies of any kind (normal, dev, build). A primitive is a
//!    crate of [`PRIMITIVES`], or any crate built on RustCrypto's algorithm traits
//!    ([`PRIMITIVE_TRAITS`]), so a newly added hash or cipher is caught without editing the list.
//!    Third-party crates may use primitives inside (sqlx's SCRAM, rustls): only what our code
//!    calls directly counts.
//! 3. **No service crate depends on another service crate**: a service, or an application that
//!    talks to services (the terminal, later the wallet), reaches no other service through its
//!    normal dependencies, transitively within the workspace: they talk over HTTP through client
//!    crates. Dev-dependencies count too (directly), except [`DEV_ALLOWED`]: tests that start a
//!    real peer service to talk to it over HTTP; they do not link it into the product. Only the
//!    `cardcash` binary, the composition root, links every service.
//! 4. **Only the composition crates link services**: besides the `cardcash` binary, only the
//!    world (`cardcash-world`, the one way to start and wire services) and the test kit on top
//!    of it reach a service through their normal dependencies; no protocol or infrastructure
//!    crate does.
//! 5. **The test kit is a dev-dependency only**: no crate depends on `cardcash-testkit` as a
//!    normal or build dependency, so nothing it carries (fresh test databases, the in-memory
//!    card provider, every service) reaches a product. Tests start their peers through it;
//!    that is how a service's tests may run other services without a [`DEV_ALLOWED`] entry.
//!
//! Every workspace member must be classified in [`CLASSES`]: a new crate (the exchange, the
//! merchant, …) fails this test until someone decides which rules bind it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::process::Command;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Protocol values, crypto and wire types: no IO (rule 1).
    Protocol,
    /// Shared plumbing every service uses (`http`, `store`, the clients).
    Infrastructure,
    /// An HTTP service with its own database (rule 3).
    Service,
    /// A program that talks to services over HTTP (rule 3).
    App,
    /// Starts and wires services (`cardcash-world`): may link every service; the binary and
    /// the test kit use it (rule 4).
    World,
    /// The test kit: links the world; only ever a dev-dependency (rule 5).
    TestKit,
    /// The `cardcash` binary: links everything.
    Binary,
}

/// Every workspace member and its class; the future services are listed so that they are bound
/// by rule 3 the day they are added.
const CLASSES: &[(&str, Class)] = &[
    ("cardcash-util", Class::Protocol),
    ("cardcash-crypto", Class::Protocol),
    ("cardcash-api", Class::Protocol),
    ("cardcash-http", Class::Infrastructure),
    ("cardcash-store", Class::Infrastructure),
    ("cardcash-client", Class::Infrastructure),
    ("cardcash-world", Class::World),
    ("cardcash-testkit", Class::TestKit),
    ("cardcash-bank", Class::Service),
    ("cardcash-cardproc", Class::Service),
    ("cardcash-c2ec", Class::Service),
    ("cardcash-exchange", Class::Service),
    ("cardcash-merchant", Class::Service),
    ("cardcash-storefront", Class::Service),
    ("cardcash-terminal", Class::App),
    ("cardcash-wallet", Class::App),
    ("cardcash", Class::Binary),
];

/// The one crate allowed to touch primitives.
const CRYPTO: &str = "cardcash-crypto";

/// The test kit (rule 5).
const TESTKIT: &str = "cardcash-testkit";

/// Crates that do IO: runtimes, network and HTTP stacks, databases.
const IO_CRATES: &[&str] = &[
    "tokio",
    "tokio-util",
    "tokio-stream",
    "mio",
    "async-std",
    "smol",
    "axum",
    "axum-core",
    "hyper",
    "hyper-util",
    "tower",
    "tower-http",
    "reqwest",
    "ureq",
    "curl",
    "isahc",
    "sqlx",
    "sqlx-core",
    "rusqlite",
    "libsqlite3-sys",
    "tokio-postgres",
    "postgres",
    "socket2",
];

/// Cryptographic primitives named outright (hashes, MACs, KDFs, password hashes, signatures, key
/// exchange, ciphers, crypto libraries).
const PRIMITIVES: &[&str] = &[
    "sha1",
    "sha2",
    "sha3",
    "md-5",
    "blake2",
    "blake3",
    "hmac",
    "hkdf",
    "pbkdf2",
    "argon2",
    "scrypt",
    "bcrypt",
    "ed25519",
    "ed25519-dalek",
    "curve25519-dalek",
    "x25519-dalek",
    "p256",
    "k256",
    "ecdsa",
    "rsa",
    "openssl",
    "openssl-sys",
    "ring",
    "aws-lc-rs",
    "libsodium-sys",
    "sodiumoxide",
    "aes",
    "aes-gcm",
    "chacha20",
    "chacha20poly1305",
    "crypto-bigint",
];

/// RustCrypto's algorithm traits: a crate that depends on one of them implements a primitive.
const PRIMITIVE_TRAITS: &[&str] = &[
    "digest",
    "crypto-common",
    "cipher",
    "aead",
    "signature",
    "password-hash",
    "universal-hash",
    "elliptic-curve",
];

/// Normal dependencies between services that are being removed. Each entry is a known debt with
/// the issue that removes it; delete the entry with the dependency.
const TEMPORARY_ALLOWED: &[(&str, &str)] = &[
    // None left: C2EC and the terminal reach the card processor through cardcash-client.
];

/// Dev-dependencies on a service that are allowed: integration tests that run the real peer and
/// talk to it over HTTP (nothing of it is linked into the crate itself).
const DEV_ALLOWED: &[(&str, &str)] = &[
    // The wallet's tests configure the exchange's denominations (RSA and CS) with its
    // configuration type; the exchange runs in the test kit's world, reached over HTTP.
    ("cardcash-wallet", "cardcash-exchange"),
];

/// The workspace as `cargo metadata` resolves it.
struct Workspace {
    /// Package id → name.
    names: BTreeMap<String, String>,
    /// Package id → (dependency id, kinds: "normal", "dev", "build").
    deps: BTreeMap<String, Vec<(String, BTreeSet<String>)>>,
    /// Workspace member ids.
    members: Vec<String>,
}

impl Workspace {
    fn load() -> Self {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
        let out = Command::new(cargo)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--manifest-path",
                manifest,
            ])
            .output()
            .expect("run cargo metadata");
        assert!(
            out.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
        let names = meta["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|p| (text(&p["id"]), text(&p["name"])))
            .collect();
        let deps = meta["resolve"]["nodes"]
            .as_array()
            .expect("resolve.nodes")
            .iter()
            .map(|node| {
                let deps = node["deps"]
                    .as_array()
                    .expect("deps")
                    .iter()
                    .map(|d| {
                        let kinds = d["dep_kinds"]
                            .as_array()
                            .expect("dep_kinds")
                            .iter()
                            .map(|k| k["kind"].as_str().unwrap_or("normal").to_owned())
                            .collect();
                        (text(&d["pkg"]), kinds)
                    })
                    .collect();
                (text(&node["id"]), deps)
            })
            .collect();
        let members = meta["workspace_members"]
            .as_array()
            .expect("workspace_members")
            .iter()
            .map(text)
            .collect();
        Self {
            names,
            deps,
            members,
        }
    }

    fn name(&self, id: &str) -> &str {
        &self.names[id]
    }

    fn member(&self, name: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|id| self.name(id) == name)
            .map(String::as_str)
    }

    /// Direct dependencies of `id` with one of `kinds`.
    fn direct<'a>(&'a self, id: &str, kinds: &[&str]) -> impl Iterator<Item = &'a str> + 'a {
        let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        self.deps[id]
            .iter()
            .filter(move |(_, k)| kinds.iter().any(|kind| k.contains(kind)))
            .map(|(dep, _)| dep.as_str())
    }

    /// Every package reachable from `id` through normal dependencies, following only packages
    /// `follow` accepts, each with the path that reaches it (`a → b → c`).
    fn reachable(&self, id: &str, follow: impl Fn(&str) -> bool) -> BTreeMap<String, String> {
        let mut paths = BTreeMap::new();
        let mut queue = VecDeque::from([(id.to_owned(), self.name(id).to_owned())]);
        while let Some((at, path)) = queue.pop_front() {
            for dep in self.direct(&at, &["normal"]) {
                if paths.contains_key(dep) {
                    continue;
                }
                let dep_path = format!("{path} → {}", self.name(dep));
                paths.insert(dep.to_owned(), dep_path.clone());
                if follow(dep) {
                    queue.push_back((dep.to_owned(), dep_path));
                }
            }
        }
        paths
    }

    /// Whether `id` is a primitive: named in [`PRIMITIVES`] or built on a RustCrypto trait.
    fn is_primitive(&self, id: &str) -> bool {
        PRIMITIVES.contains(&self.name(id))
            || self
                .direct(id, &["normal"])
                .any(|dep| PRIMITIVE_TRAITS.contains(&self.name(dep)))
    }
}

fn text(v: &Value) -> String {
    v.as_str().expect("a string").to_owned()
}

fn class_of(name: &str) -> Option<Class> {
    CLASSES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

fn workspace() -> &'static Workspace {
    static WS: std::sync::OnceLock<Workspace> = std::sync::OnceLock::new();
    WS.get_or_init(Workspace::load)
}

fn assert_none(rule: &str, violations: Vec<String>) {
    assert!(
        violations.is_empty(),
        "ARCHITECTURE.md rule broken: {rule}\n  {}",
        violations.join("\n  ")
    );
}

#[test]
fn every_workspace_crate_is_classified() {
    let ws = workspace();
    let unclassified: Vec<String> = ws
        .members
        .iter()
        .map(|id| ws.name(id))
        .filter(|name| class_of(name).is_none())
        .map(|name| format!("{name}: add it to CLASSES in tests/cli/architecture.rs"))
        .collect();
    assert_none("every crate has a class", unclassified);
    for (name, _) in CLASSES.iter().filter(|(_, c)| *c == Class::Protocol) {
        assert!(
            ws.member(name).is_some(),
            "protocol crate {name} is missing"
        );
    }
}

#[test]
fn protocol_crates_do_no_io() {
    let ws = workspace();
    let mut violations = Vec::new();
    for id in &ws.members {
        if class_of(ws.name(id)) != Some(Class::Protocol) {
            continue;
        }
        for (dep, path) in ws.reachable(id, |_| true) {
            if IO_CRATES.contains(&ws.name(&dep)) {
                violations.push(path);
            }
        }
        for dep in ws.direct(id, &["dev"]) {
            if IO_CRATES.contains(&ws.name(dep)) {
                violations.push(format!("{} → {} (dev)", ws.name(id), ws.name(dep)));
            }
        }
    }
    assert_none(
        "protocol crates (util, crypto, api) depend on no IO crate",
        violations,
    );
}

#[test]
fn only_crypto_touches_primitives() {
    let ws = workspace();
    let mut violations = Vec::new();
    for id in &ws.members {
        if ws.name(id) == CRYPTO {
            continue;
        }
        for dep in ws.direct(id, &["normal", "dev", "build"]) {
            if ws.is_primitive(dep) {
                violations.push(format!(
                    "{} → {}: call cardcash-crypto instead",
                    ws.name(id),
                    ws.name(dep)
                ));
            }
        }
    }
    assert_none("only cardcash-crypto depends on primitives", violations);
}

#[test]
fn no_service_depends_on_another_service() {
    let ws = workspace();
    let is_service = |id: &str| class_of(ws.name(id)) == Some(Class::Service);
    let is_member = |id: &str| ws.members.iter().any(|m| m == id);
    let mut violations = Vec::new();
    let mut allowances_used = BTreeSet::new();
    for id in &ws.members {
        let name = ws.name(id);
        if !matches!(class_of(name), Some(Class::Service | Class::App)) {
            continue;
        }
        for (dep, path) in ws.reachable(id, is_member) {
            if dep == *id || !is_service(&dep) {
                continue;
            }
            let pair = (name, ws.name(&dep));
            if TEMPORARY_ALLOWED.contains(&pair) {
                allowances_used.insert(pair);
            } else {
                violations.push(format!("{path}: talk to it through a client crate"));
            }
        }
        for dep in ws.direct(id, &["dev"]) {
            if dep == id || !is_service(dep) {
                continue;
            }
            let pair = (name, ws.name(dep));
            if DEV_ALLOWED.contains(&pair) {
                allowances_used.insert(pair);
            } else {
                violations.push(format!(
                    "{} → {} (dev): start it through the test kit, or add it to DEV_ALLOWED with a reason",
                    pair.0, pair.1
                ));
            }
        }
    }
    assert_none(
        "no service crate depends on another service crate",
        violations,
    );
    // An allowance whose dependency is gone must go too, so the lists never hide a new one.
    let stale: Vec<String> = TEMPORARY_ALLOWED
        .iter()
        .chain(DEV_ALLOWED)
        .filter(|pair| !allowances_used.contains(*pair))
        .map(|(a, b)| format!("{a} → {b} no longer exists: delete its allowance"))
        .collect();
    assert_none("allowances name existing dependencies only", stale);
}

#[test]
fn only_composition_crates_link_services() {
    let ws = workspace();
    let is_service = |id: &str| class_of(ws.name(id)) == Some(Class::Service);
    let is_member = |id: &str| ws.members.iter().any(|m| m == id);
    let mut violations = Vec::new();
    for id in &ws.members {
        if matches!(
            class_of(ws.name(id)),
            // Services and apps: rule 3.
            Some(Class::World | Class::TestKit | Class::Binary | Class::Service | Class::App)
        ) {
            continue;
        }
        for (dep, path) in ws.reachable(id, is_member) {
            if is_service(&dep) {
                violations.push(format!(
                    "{path}: only the binary, the world and the test kit link services"
                ));
            }
        }
    }
    assert_none("only composition crates link services", violations);
}

#[test]
fn the_test_kit_is_only_a_dev_dependency() {
    let ws = workspace();
    let testkit = ws
        .member(TESTKIT)
        .expect("the test kit is a workspace member");
    let mut violations = Vec::new();
    let mut dev_users = 0;
    for id in &ws.members {
        for (dep, kinds) in &ws.deps[id.as_str()] {
            if dep != testkit {
                continue;
            }
            for kind in kinds.iter().filter(|k| k.as_str() != "dev") {
                violations.push(format!(
                    "{} → {TESTKIT} ({kind}): make it a [dev-dependencies] entry",
                    ws.name(id)
                ));
            }
            if kinds.contains("dev") {
                dev_users += 1;
            }
        }
    }
    assert_none("the test kit is a dev-dependency only", violations);
    assert!(dev_users > 0, "no crate's tests use the test kit");
}

/// The rules must catch what they claim to: known primitives and IO crates are classified so.
#[test]
fn the_rules_recognise_what_they_forbid() {
    let ws = workspace();
    let id_of = |name: &str| {
        ws.names
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(id, _)| id.clone())
    };
    for primitive in ["sha2", "hmac", "ed25519-dalek"] {
        let id = id_of(primitive).expect("in the lock file");
        assert!(ws.is_primitive(&id), "{primitive}");
    }
    // hkdf is named; it is built on hmac, not directly on a trait crate.
    for not_primitive in ["serde", "tokio", "url"] {
        let id = id_of(not_primitive).expect("in the lock file");
        assert!(!ws.is_primitive(&id), "{not_primitive}");
    }
    let bank = ws.member("cardcash-bank").expect("bank");
    let reach = ws.reachable(bank, |_| true);
    assert!(
        reach.keys().any(|id| ws.name(id) == "tokio"),
        "the transitive walk finds tokio under the bank"
    );
}
