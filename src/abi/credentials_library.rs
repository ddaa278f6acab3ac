//! Loads the AWS SDK credentials library (`crates/credentials-sdk`) from the module's own
//! directory, the first time a config names a provider, and implements
//! [`Providers`] over its C functions. The library is never unloaded: its code may be
//! asked for again by the next config, and a Rust library with threads and thread-locals
//! cannot be unloaded safely.

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use envoy_lambda_credentials_wire::{
    ABI_VERSION, AbiVersionFn, FetchFn, FetchRequest, LIBRARY_FILE, SYMBOL_ABI_VERSION,
    SYMBOL_FETCH, SYMBOL_STOP, StopFn,
};
use tokio::sync::oneshot;

use crate::credentials::{
    ANSWER_TIMEOUT, FailureReason, Fetch, FetchError, FetchFuture, Fetched, Providers, read_answer,
};

struct SdkLibrary {
    fetch: FetchFn,
    stop: StopFn,
    // Keeps the library mapped for the process's life (statics are never dropped).
    _library: libloading::Library,
}

static LIBRARY: OnceLock<Result<SdkLibrary, String>> = OnceLock::new();

/// The providers of the SDK library next to the module, loaded on first use. The error says
/// which file was tried and why it failed.
pub fn providers() -> Result<Arc<dyn Providers>, String> {
    match LIBRARY.get_or_init(load) {
        Ok(lib) => Ok(Arc::new(SdkProviders(lib))),
        Err(e) => Err(e.clone()),
    }
}

fn load() -> Result<SdkLibrary, String> {
    let path = library_path()?;
    let shown = path.display();
    // SAFETY: loading runs the library's initialisers: it is our own Rust library (no
    // constructors of its own beyond std's), built with this module (`cargo build`).
    let library = unsafe { libloading::Library::new(&path) }
        .map_err(|e| format!("cannot load {shown}: {e}"))?;
    // SAFETY: the symbols have these types in the library (the wire crate is shared by both
    // sides, and the version check below rejects a library of another interface).
    let (version, fetch, stop) = unsafe {
        let version: AbiVersionFn = *library
            .get::<AbiVersionFn>(SYMBOL_ABI_VERSION.as_bytes())
            .map_err(|e| format!("{shown} is not the credentials library: {e}"))?;
        let fetch: FetchFn = *library
            .get::<FetchFn>(SYMBOL_FETCH.as_bytes())
            .map_err(|e| format!("{shown} lacks {SYMBOL_FETCH}: {e}"))?;
        let stop: StopFn = *library
            .get::<StopFn>(SYMBOL_STOP.as_bytes())
            .map_err(|e| format!("{shown} lacks {SYMBOL_STOP}: {e}"))?;
        (version, fetch, stop)
    };
    let got = version();
    if got != ABI_VERSION {
        return Err(format!(
            "{shown} speaks version {got} of the credentials interface, this module {ABI_VERSION}: \
             install the two files of one build"
        ));
    }
    Ok(SdkLibrary {
        fetch,
        stop,
        _library: library,
    })
}

/// `LIBRARY_FILE` in the directory this module was loaded from.
fn library_path() -> Result<PathBuf, String> {
    let maps = std::fs::read_to_string("/proc/self/maps")
        .map_err(|e| format!("cannot read /proc/self/maps to find the module's directory: {e}"))?;
    let here = library_path as fn() -> Result<PathBuf, String> as usize;
    let module = mapped_file_at(&maps, here)
        .ok_or_else(|| "cannot find the module's own file in /proc/self/maps".to_owned())?;
    let dir = Path::new(module).parent().unwrap_or(Path::new("/"));
    Ok(dir.join(LIBRARY_FILE))
}

/// The file mapped at `addr` according to a `/proc/<pid>/maps` text.
fn mapped_file_at(maps: &str, addr: usize) -> Option<&str> {
    maps.lines().find_map(|line| {
        let mut fields = line.splitn(6, ' ');
        let (start, end) = fields.next()?.split_once('-')?;
        let (start, end) = (
            usize::from_str_radix(start, 16).ok()?,
            usize::from_str_radix(end, 16).ok()?,
        );
        let path = fields.nth(4)?.trim_start();
        (start <= addr && addr < end && path.starts_with('/')).then_some(path)
    })
}

struct SdkProviders(&'static SdkLibrary);

impl Providers for SdkProviders {
    fn fetcher(&self, request: FetchRequest) -> Box<dyn Fetch> {
        Box::new(LibraryFetch {
            fetch: self.0.fetch,
            // The request holds no secret (sources, paths, role ARNs, the region).
            request: serde_json::to_vec(&request).unwrap_or_default(),
        })
    }

    fn stop(&self) {
        (self.0.stop)();
    }
}

struct LibraryFetch {
    fetch: FetchFn,
    request: Vec<u8>,
}

type Answer = oneshot::Sender<Result<Fetched, FetchError>>;

impl Fetch for LibraryFetch {
    fn fetch(&self) -> FetchFuture<'_> {
        let (tx, rx) = oneshot::channel();
        let ctx = Box::into_raw(Box::new(tx)) as *mut c_void;
        // SAFETY: `request` is readable for the call; `done` matches `DoneFn`; `ctx` is the
        // boxed sender that `done` takes back, once (the library's contract).
        unsafe { (self.fetch)(self.request.as_ptr(), self.request.len(), done, ctx) };
        Box::pin(async move {
            match tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) | Err(_) => Err(FetchError {
                    reason: FailureReason::Timeout,
                    message: format!(
                        "the credentials library gave no answer in {ANSWER_TIMEOUT:?}"
                    ),
                }),
            }
        })
    }
}

/// The library's answer to one fetch, on its thread.
extern "C" fn done(ctx: *mut c_void, answer: *const u8, len: usize) {
    // SAFETY: `ctx` is the `Box<Answer>` leaked in `LibraryFetch::fetch`, handed back exactly
    // once; taking it back frees it.
    let tx = unsafe { Box::from_raw(ctx as *mut Answer) };
    let bytes: &[u8] = if answer.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: the library keeps `len` bytes at `answer` readable for this call.
        unsafe { std::slice::from_raw_parts(answer, len) }
    };
    let result = std::panic::catch_unwind(|| read_answer(bytes)).unwrap_or_else(|_| {
        Err(FetchError {
            reason: FailureReason::Other,
            message: "the credentials library's answer could not be read".into(),
        })
    });
    let _ = tx.send(result); // the refresher may have stopped waiting
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_holding_an_address_is_found_in_the_maps() {
        let maps = "\
55d0c0000000-55d0c0021000 r--p 00000000 fd:01 1234    /usr/bin/envoy
7f00a0000000-7f00a0100000 r-xp 00024000 fd:01 99      /opt/envoy modules/libenvoy_lambda.so
7f00a0100000-7f00a0200000 rw-p 00000000 00:00 0
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0       [stack]
";
        assert_eq!(
            mapped_file_at(maps, 0x7f00a0000100),
            Some("/opt/envoy modules/libenvoy_lambda.so")
        );
        assert_eq!(mapped_file_at(maps, 0x55d0c0000000), Some("/usr/bin/envoy"));
        assert_eq!(mapped_file_at(maps, 0x7f00a0100010), None); // anonymous
        assert_eq!(mapped_file_at(maps, 0x7ffc00000010), None); // [stack]
        assert_eq!(mapped_file_at(maps, 0x1), None);
    }

    /// A library that answers at once, with what it was sent in the message.
    unsafe extern "C" fn answers_at_once(
        request: *const u8,
        len: usize,
        done: envoy_lambda_credentials_wire::DoneFn,
        ctx: *mut c_void,
    ) {
        // SAFETY: the test's LibraryFetch passes its request bytes for the call.
        let sent = unsafe { std::slice::from_raw_parts(request, len) };
        let answer = envoy_lambda_credentials_wire::FetchAnswer::Failed {
            reason: "not_loaded".into(),
            message: String::from_utf8_lossy(sent).into_owned(),
        };
        let bytes = serde_json::to_vec(&answer).unwrap();
        done(ctx, bytes.as_ptr(), bytes.len());
    }

    /// A library that loses the fetch.
    unsafe extern "C" fn never_answers(
        _: *const u8,
        _: usize,
        _: envoy_lambda_credentials_wire::DoneFn,
        _: *mut c_void,
    ) {
    }

    fn paused_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    }

    #[test]
    fn an_answer_comes_back_through_done_and_a_lost_one_times_out() {
        let rt = paused_runtime();
        let fetch = LibraryFetch {
            fetch: answers_at_once,
            request: br#"{"region":"x"}"#.to_vec(),
        };
        let err = rt.block_on(fetch.fetch()).unwrap_err();
        assert_eq!(err.reason, FailureReason::NotLoaded);
        assert_eq!(err.message, r#"{"region":"x"}"#);

        let lost = LibraryFetch {
            fetch: never_answers,
            request: Vec::new(),
        };
        let err = rt.block_on(lost.fetch()).unwrap_err();
        assert_eq!(err.reason, FailureReason::Timeout);
        assert!(err.message.contains("no answer"), "{}", err.message);
    }

    #[test]
    fn this_test_binary_is_found_as_itself() {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let here = mapped_file_at(
            &maps,
            mapped_file_at as fn(&str, usize) -> Option<&str> as usize,
        );
        let exe = std::env::current_exe().unwrap();
        assert_eq!(here.map(PathBuf::from), Some(exe));
    }
}
