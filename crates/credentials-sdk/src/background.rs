//! The library's one thread: a tokio current-thread runtime that runs every fetch, with the
//! one HTTP client they share. Started by the first fetch; [`stop`] ends and joins it, and a
//! fetch still running is answered as failed before `stop` returns, so the module can be
//! sure nothing calls into it afterwards.

use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;

use aws_smithy_runtime_api::client::http::SharedHttpClient;
use envoy_lambda_credentials_wire::{FetchAnswer, FetchRequest};

use crate::providers;

/// Where an answer goes. Answered exactly once: by [`Reply::send`], or, if the fetch is
/// dropped unanswered (its runtime stopped), as failed when it is dropped.
pub struct Reply(Option<Box<dyn FnOnce(FetchAnswer) + Send>>);

impl Reply {
    pub fn new(to: impl FnOnce(FetchAnswer) + Send + 'static) -> Self {
        Reply(Some(Box::new(to)))
    }

    pub fn send(mut self, answer: FetchAnswer) {
        if let Some(to) = self.0.take() {
            to(answer);
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(to) = self.0.take() {
            to(failed(
                "other",
                "the credentials library stopped before the fetch ended",
            ));
        }
    }
}

pub fn failed(reason: &str, message: &str) -> FetchAnswer {
    FetchAnswer::Failed {
        reason: reason.to_owned(),
        message: message.to_owned(),
    }
}

struct Background {
    handle: tokio::runtime::Handle,
    shutdown: tokio::sync::oneshot::Sender<()>,
    thread: JoinHandle<()>,
    http: SharedHttpClient,
}

static BACKGROUND: Mutex<Option<Background>> = Mutex::new(None);

fn lock() -> MutexGuard<'static, Option<Background>> {
    BACKGROUND.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs one fetch on the library's thread (starting it if needed) and answers `reply`.
pub fn fetch(request: FetchRequest, reply: Reply) {
    let mut guard = lock();
    if guard.is_none() {
        match start() {
            Ok(bg) => *guard = Some(bg),
            Err(e) => {
                drop(guard);
                reply.send(failed(
                    "other",
                    &format!("cannot start the credentials thread: {e}"),
                ));
                return;
            }
        }
    }
    let Some(bg) = guard.as_ref() else { return };
    let (http, runtime) = (bg.http.clone(), bg.handle.clone());
    bg.handle.spawn(async move {
        // The fetch is a task of its own: a panic inside the SDK ends only that task, and is
        // answered as a failure; the thread goes on.
        let answer = match runtime
            .spawn(async move { providers::fetch(&request, http).await })
            .await
        {
            Ok(answer) => answer,
            Err(e) if e.is_panic() => failed("other", "the SDK provider panicked"),
            Err(_) => return, // cancelled: the runtime stops, and `reply` answers as dropped
        };
        reply.send(answer);
    });
}

/// Ends the thread and joins it (no-op when it is not running). Fetches still running are
/// answered as failed first.
pub fn stop() {
    let bg = lock().take();
    if let Some(bg) = bg {
        let _ = bg.shutdown.send(());
        if bg.thread.thread().id() != std::thread::current().id() {
            let _ = bg.thread.join();
        }
    }
}

fn start() -> Result<Background, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (shutdown, wait) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("envoy-lambda-sdk".into())
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
            // The client's connection pool belongs to this runtime: built on it.
            let http = rt.block_on(async { providers::http_client() });
            let _ = tx.send(Ok((rt.handle().clone(), http)));
            rt.block_on(async move {
                let _ = wait.await;
            });
            // Dropping `rt` drops the fetches still running: their replies answer "stopped".
        })
        .map_err(|e| e.to_string())?;
    match rx.recv() {
        Ok(Ok((handle, http))) => Ok(Background {
            handle,
            shutdown,
            thread,
            http,
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err("the thread ended at once".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_lambda_credentials_wire::CredentialSource;
    use std::sync::mpsc;
    use std::time::Duration;

    fn profile_request(path: &std::path::Path) -> FetchRequest {
        FetchRequest {
            source: CredentialSource::Profile {
                name: Some("unit".into()),
                config_file: Some(path.with_extension("config").display().to_string()),
                credentials_file: Some(path.display().to_string()),
            },
            assume_role: None,
            region: "us-east-1".into(),
        }
    }

    fn answered(rx: &mpsc::Receiver<FetchAnswer>) -> FetchAnswer {
        rx.recv_timeout(Duration::from_secs(10)).expect("no answer")
    }

    #[test]
    fn fetches_run_on_the_thread_and_stop_answers_and_joins() {
        let dir = std::env::temp_dir().join(format!("elsdk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("credentials");
        std::fs::write(
            &file,
            "[unit]\naws_access_key_id = AKIDUNIT\naws_secret_access_key = unit/secret\n",
        )
        .unwrap();
        std::fs::write(file.with_extension("config"), "").unwrap();

        let (tx, rx) = mpsc::channel();
        let t = tx.clone();
        fetch(
            profile_request(&file),
            Reply::new(move |a| t.send(a).unwrap()),
        );
        match answered(&rx) {
            FetchAnswer::Credentials {
                access_key,
                secret_key,
                source,
                ..
            } => {
                assert_eq!(access_key, "AKIDUNIT");
                assert_eq!(secret_key.as_str(), "unit/secret");
                assert_eq!(source, "profile");
            }
            FetchAnswer::Failed { message, .. } => panic!("failed: {message}"),
        }
        // a missing profile: a failure with the SDK's reason
        let mut missing = profile_request(&file);
        if let CredentialSource::Profile { name, .. } = &mut missing.source {
            *name = Some("absent".into());
        }
        let t = tx.clone();
        fetch(missing, Reply::new(move |a| t.send(a).unwrap()));
        match answered(&rx) {
            FetchAnswer::Failed { reason, message } => {
                assert!(reason != "other", "{reason}: {message}");
                assert!(message.contains("absent"), "{message}");
            }
            FetchAnswer::Credentials { .. } => panic!("credentials for a missing profile"),
        }
        stop();
        assert!(lock().is_none());
        // a fetch after stop starts the thread again
        let t = tx.clone();
        fetch(
            profile_request(&file),
            Reply::new(move |a| t.send(a).unwrap()),
        );
        assert!(matches!(answered(&rx), FetchAnswer::Credentials { .. }));
        stop();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_reply_dropped_unanswered_answers_failed() {
        let (tx, rx) = mpsc::channel();
        drop(Reply::new(move |a| tx.send(a).unwrap()));
        assert!(matches!(answered(&rx), FetchAnswer::Failed { .. }));
    }
}
