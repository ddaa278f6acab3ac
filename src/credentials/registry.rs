//! One refresher per distinct identity in the process, all on one background thread.
//!
//! An identity is what the providers are asked for: the source, the role on top and the
//! region (the STS endpoint). Every upstream of every filter config with the same identity
//! shares its [`Identity`] (and so its credentials and its refresher), as discovery shares a
//! listing; a config update starts with the credentials the old config had. When the last
//! holder drops its `Arc<Identity>`, the refresher stops; when no identity is left, the
//! background thread ends and is joined (Envoy may unload the module once its last config is
//! gone, and no thread may run its code then).
//!
//! The thread runs a tokio current-thread runtime; each refresher is one task, supervised: a
//! panic is logged and the refresher restarts after a back-off, with the cached credentials.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use super::current::CurrentCredentials;
use super::providers::{Providers, request_for};
use super::refresher::{Clock, Fetch, LogFn, Refresher, Stop, SystemClock};
use super::schedule::random_seed;
use crate::config::ProviderSpec;
use crate::host::LogLevel;

/// An identity's credentials, held by every upstream that signs with them.
pub struct Identity {
    pub current: Arc<CurrentCredentials>,
    /// `source: chain` or `source: env, role arn:…`, for replies and logs.
    pub describe: String,
    key: String,
    stop: Arc<Stop>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("describe", &self.describe)
            .field("current", &self.current)
            .finish()
    }
}

impl Identity {
    /// The source as users wrote it (`chain`, `env` …), for the 503 reply.
    pub fn source_name(&self) -> &str {
        self.describe
            .strip_prefix("source: ")
            .and_then(|s| s.split(',').next())
            .unwrap_or(&self.describe)
    }
}

struct Background {
    handle: tokio::runtime::Handle,
    shutdown: tokio::sync::oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

#[derive(Default)]
struct Registry {
    identities: HashMap<String, Weak<Identity>>,
    background: Option<Background>,
    /// Where the fetches go; told to stop with the background thread.
    providers: Option<Arc<dyn Providers>>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn lock() -> MutexGuard<'static, Option<Registry>> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// The identity for `spec` in `region`: the running one if any holder has it, else a new one
/// whose refresher starts fetching at once through `providers`. `None` if the background
/// thread cannot start.
pub fn identity(
    spec: &ProviderSpec,
    region: &str,
    log: LogFn,
    providers: &Arc<dyn Providers>,
) -> Option<Arc<Identity>> {
    let key = format!("{:?}", (&spec.source, &spec.assume_role, region));
    let mut guard = lock();
    let registry = guard.get_or_insert_with(Registry::default);
    if let Some(existing) = registry.identities.get(&key).and_then(Weak::upgrade) {
        return Some(existing);
    }
    if registry.background.is_none() {
        registry.background = Some(start_background(&log)?);
    }
    let handle = registry.background.as_ref()?.handle.clone();
    registry.providers = Some(Arc::clone(providers));
    let describe = match &spec.assume_role {
        None => format!("source: {}", spec.source.name()),
        Some(r) => format!("source: {}, role {}", spec.source.name(), r.role_arn),
    };
    let identity = Arc::new(Identity {
        current: Arc::new(CurrentCredentials::default()),
        describe: describe.clone(),
        key: key.clone(),
        stop: Arc::new(Stop::default()),
    });
    let fetcher: Arc<dyn Fn() -> Box<dyn Fetch> + Send + Sync> = {
        let (request, providers) = (request_for(spec, region), Arc::clone(providers));
        Arc::new(move || providers.fetcher(request.clone()))
    };
    spawn_supervised(
        &handle,
        Arc::clone(&identity.current),
        Arc::clone(&identity.stop),
        fetcher,
        log,
        describe,
    );
    registry.identities.insert(key, Arc::downgrade(&identity));
    Some(identity)
}

impl Drop for Identity {
    fn drop(&mut self) {
        self.stop.stop();
        let ended = {
            let mut guard = lock();
            let Some(registry) = guard.as_mut() else {
                return;
            };
            if registry
                .identities
                .get(&self.key)
                .is_some_and(|w| w.strong_count() == 0)
            {
                registry.identities.remove(&self.key);
            }
            registry.identities.retain(|_, w| w.strong_count() > 0);
            if registry.identities.is_empty() {
                registry
                    .background
                    .take()
                    .map(|bg| (bg, registry.providers.take()))
            } else {
                None
            }
        };
        // Outside the lock: the thread may be about to take it.
        if let Some((bg, providers)) = ended {
            let _ = bg.shutdown.send(());
            if bg.thread.thread().id() != std::thread::current().id() {
                let _ = bg.thread.join();
            }
            // No refresher is left to ask: the providers' own thread ends too.
            if let Some(p) = providers {
                p.stop();
            }
        }
    }
}

fn start_background(log: &LogFn) -> Option<Background> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (shutdown, wait) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("envoy-lambda-creds".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = tx.send(Ok(rt.handle().clone()));
            rt.block_on(async move {
                let _ = wait.await;
            });
        });
    let thread = match thread {
        Ok(t) => t,
        Err(e) => {
            log(
                LogLevel::Error,
                &format!("envoy-lambda: cannot start the credentials thread: {e}"),
            );
            return None;
        }
    };
    match rx.recv() {
        Ok(Ok(handle)) => Some(Background {
            handle,
            shutdown,
            thread,
        }),
        Ok(Err(e)) => {
            log(
                LogLevel::Error,
                &format!("envoy-lambda: cannot start the credentials runtime: {e}"),
            );
            None
        }
        Err(_) => None,
    }
}

/// Runs a refresher until stopped; a panic is logged and the refresher restarts (1 s, doubling
/// to a minute), keeping the credentials fetched so far.
fn spawn_supervised(
    handle: &tokio::runtime::Handle,
    current: Arc<CurrentCredentials>,
    stop: Arc<Stop>,
    fetcher: Arc<dyn Fn() -> Box<dyn Fetch> + Send + Sync>,
    log: LogFn,
    describe: String,
) {
    let runtime = handle.clone();
    handle.spawn(async move {
        let mut delay = Duration::from_secs(1);
        loop {
            let refresher = Refresher {
                current: Arc::clone(&current),
                fetcher: fetcher(),
                clock: Arc::new(SystemClock) as Arc<dyn Clock>,
                seed: Box::new(random_seed),
                log: Arc::clone(&log),
                describe: describe.clone(),
                stop: Arc::clone(&stop),
            };
            match runtime.spawn(refresher.run()).await {
                Ok(()) => return,
                Err(e) if e.is_panic() => {
                    let payload = e.into_panic();
                    log(
                        LogLevel::Error,
                        &format!(
                            "envoy-lambda: panic in the credentials refresher for {describe}: \
                             {}; restarting it in {delay:?}",
                            crate::panic_message::panic_message(payload.as_ref())
                        ),
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
                Err(_) => return, // cancelled: the runtime is shutting down
            }
        }
    });
}

#[cfg(test)]
impl Identity {
    /// An identity outside the registry, with no refresher: tests store credentials by hand.
    pub(crate) fn for_test(describe: &str) -> Arc<Identity> {
        Arc::new(Identity {
            current: Arc::new(CurrentCredentials::default()),
            describe: describe.to_owned(),
            key: format!("test:{describe}"),
            stop: Arc::new(Stop::default()),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Instant, SystemTime};

    use envoy_lambda_credentials_wire::{CredentialSource, FetchRequest};
    use zeroize::Zeroizing;

    use super::*;
    use crate::credentials::{AwsCredentials, FetchError, FetchFuture, Fetched, SourceName};

    #[derive(Default)]
    struct FakeProviders {
        requests: Mutex<Vec<FetchRequest>>,
        stops: AtomicUsize,
    }

    struct FakeFetch;

    impl Fetch for FakeFetch {
        fn fetch(&self) -> FetchFuture<'_> {
            Box::pin(async {
                Ok::<_, FetchError>(Fetched {
                    credentials: AwsCredentials {
                        access_key: "AKIDREGISTRY".into(),
                        secret_key: Zeroizing::new("secret".into()),
                        session_token: None,
                    },
                    expires: None,
                    source: SourceName::Env,
                })
            })
        }
    }

    impl Providers for FakeProviders {
        fn fetcher(&self, request: FetchRequest) -> Box<dyn Fetch> {
            self.requests.lock().unwrap().push(request);
            Box::new(FakeFetch)
        }
        fn stop(&self) {
            self.stops.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn identities_are_shared_and_the_providers_stop_after_the_last_one() {
        let fake = Arc::new(FakeProviders::default());
        let providers: Arc<dyn Providers> = fake.clone();
        let log: LogFn = Arc::new(|_, _| {});
        let spec = ProviderSpec {
            source: CredentialSource::Env,
            assume_role: None,
            wait: Duration::from_secs(1),
        };
        let a = identity(&spec, "eu-west-1", Arc::clone(&log), &providers).unwrap();
        let b = identity(&spec, "eu-west-1", Arc::clone(&log), &providers).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "one identity per spec and region");
        let deadline = Instant::now() + Duration::from_secs(10);
        while a.current.held().is_none() {
            assert!(Instant::now() < deadline, "no credentials fetched");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(matches!(
            a.current.lookup(SystemTime::now()),
            crate::credentials::Lookup::Ready(_)
        ));
        let requests = fake.requests.lock().unwrap().clone();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].region, "eu-west-1");
        assert_eq!(requests[0].source, CredentialSource::Env);

        drop(a);
        assert_eq!(
            fake.stops.load(Ordering::SeqCst),
            0,
            "b still holds the identity"
        );
        drop(b);
        assert_eq!(
            fake.stops.load(Ordering::SeqCst),
            1,
            "stopped with the last identity"
        );
        assert!(lock().as_ref().is_none_or(|r| r.background.is_none()));
    }
}
