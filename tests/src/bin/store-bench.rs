//! The store benchmarks' tool (`tests/bench/sessions-scale.sh`), never part of the daemon:
//!
//! - `store-bench fill CONFIG TOKENS N SIDS [SAMPLE]` opens the session store of the daemon's
//!   config CONFIG exactly as `auth0-client serve` does (the backend seen through `Sealed`) and
//!   writes N sessions straight into it, 64 at a time, each a copy of the login whose token JSON
//!   is in TOKENS (`access_token`, `refresh_token`, `id_token`, as Auth0 answers a password grant)
//!   with its own access and refresh token (the last 12 characters of each signature replaced) and
//!   its own `sub` index entry. It writes SAMPLE (default 10,000) of the session ids, spread
//!   evenly, one per line, to SIDS. This is how a benchmark gets a million sessions without a
//!   million logins: the records are the daemon's own, written by its own store code.
//! - `store-bench census PATH` opens the sled folder PATH (the daemon must be stopped) and prints,
//!   as JSON, each tree's records and key and value bytes, and the folder's bytes on disk.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use auth0_client::clock::Clock;
use auth0_client::config::{Env, Settings};
use auth0_client::store::{
    IdToken, IssuedTokens, Session, SessionStore as _, SledOptions, SledStore, TreeCensus,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::StreamExt as _;
use serde_json::{Map, Value, json};

const CONCURRENT_WRITES: usize = 64;
const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["fill", config, tokens, n, sids] => fill(config, tokens, n, sids, "10000"),
        ["fill", config, tokens, n, sids, sample] => fill(config, tokens, n, sids, sample),
        ["census", path] => census(Path::new(path)),
        _ => Err("usage: store-bench fill CONFIG TOKENS N SIDS [SAMPLE] | census PATH".into()),
    };
    if let Err(error) = outcome {
        eprintln!("store-bench: {error}");
        std::process::exit(1);
    }
}

type Failure = Box<dyn std::error::Error>;

fn fill(config: &str, tokens: &str, n: &str, sids: &str, sample: &str) -> Result<(), Failure> {
    let n: u64 = n.parse()?;
    let sample: u64 = sample.parse::<u64>()?.clamp(1, n.max(1));
    let settings = Settings::load(Some(Path::new(config)), &Env::from_process())?;
    let client = settings
        .default_client
        .clone()
        .or_else(|| settings.clients.keys().next().cloned())
        .ok_or("the config has no client")?;
    let template: Value = serde_json::from_slice(&std::fs::read(tokens)?)?;
    let token = |name: &str| -> Result<String, Failure> {
        Ok(template
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{tokens} has no {name}"))?
            .to_owned())
    };
    let (access, refresh, id) = (
        token("access_token")?,
        token("refresh_token")?,
        token("id_token")?,
    );
    let claims = jwt_claims(&id)?;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or("bench")
        .to_owned();
    let lifetime = Duration::from_secs(settings.session_duration_seconds);

    let clock = Clock::system();
    let (store, _) = auth0_client::app::open_store(&settings, &clock)?;
    let every = n / sample;
    let written = AtomicU64::new(0);
    let started = Instant::now();
    let (kept, elapsed) = actix_rt::System::new().block_on(async {
        let kept: Vec<String> = futures_util::stream::iter(0..n)
            .map(|i| {
                let store = store.clone();
                let now = clock.now();
                let session = Session::new(
                    client.clone(),
                    format!("{sub}-{i}"),
                    IssuedTokens {
                        access_token: numbered(&access, i),
                        access_expires_at: now.saturating_add(Duration::from_secs(86_400)),
                        refresh_token: Some(numbered(&refresh, i)),
                        id_token: IdToken {
                            token: id.clone(),
                            claims: claims.clone(),
                        },
                    },
                    now.saturating_add(lifetime),
                    now,
                );
                let written = &written;
                async move {
                    store.create_session(&session).await?;
                    let done = written.fetch_add(1, Ordering::Relaxed) + 1;
                    if done.is_multiple_of(100_000) {
                        eprintln!("store-bench: {done} sessions written");
                    }
                    Ok::<_, Failure>(
                        (every > 0 && i.is_multiple_of(every))
                            .then(|| session.id.as_str().to_owned()),
                    )
                }
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .filter_map(|written| async move {
                match written {
                    Ok(sid) => sid,
                    Err(error) => {
                        eprintln!("store-bench: a write failed: {error}");
                        std::process::exit(1);
                    }
                }
            })
            .collect()
            .await;
        let elapsed = started.elapsed();
        store.flush().await.map(|()| (kept, elapsed))
    })?;
    std::fs::write(sids, kept.join("\n") + "\n")?;
    println!(
        "{}",
        json!({
            "sessions": n,
            "seconds": elapsed.as_secs_f64(),
            "sessionsPerSecond": n as f64 / elapsed.as_secs_f64().max(1e-9),
            "sampledSids": kept.len(),
        })
    );
    Ok(())
}

/// `token` with the last 12 characters of its last dot-separated part replaced by `i` in base64url:
/// a distinct token of the same length and shape.
fn numbered(token: &str, i: u64) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let len = bytes.len();
    let mut rest = i;
    for byte in bytes[len.saturating_sub(12)..].iter_mut().rev() {
        *byte = BASE64URL[(rest % 64) as usize];
        rest /= 64;
    }
    String::from_utf8(bytes).unwrap_or_else(|_| token.to_owned())
}

/// The payload of a JWT, as the daemon keeps a verified ID token's claims.
fn jwt_claims(token: &str) -> Result<Map<String, Value>, Failure> {
    let payload = token.split('.').nth(1).ok_or("the id_token is not a JWT")?;
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?)
}

fn census(path: &Path) -> Result<(), Failure> {
    let store = SledStore::open(path, SledOptions::default())?;
    let trees = store.census()?;
    // What the live-session gauge costs.
    let started = Instant::now();
    let live = actix_rt::System::new().block_on(store.count_live_sessions())?;
    let count_ms = started.elapsed().as_secs_f64() * 1000.0;
    drop(store);
    let total = |f: fn(&TreeCensus) -> u64| trees.iter().map(f).sum::<u64>();
    println!(
        "{}",
        json!({
            "folderBytes": folder_bytes(path)?,
            "recordBytes": total(|t| t.key_bytes + t.value_bytes),
            "sessions": trees.iter().find(|t| t.tree == "sessions").map_or(0, |t| t.records),
            "liveCount": live,
            "countMs": count_ms,
            "trees": trees,
        })
    );
    Ok(())
}

/// The bytes of the files under `path` (as `du -sb` counts them).
fn folder_bytes(path: &Path) -> Result<u64, Failure> {
    let mut total = 0;
    let mut pending: Vec<PathBuf> = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    Ok(total)
}
