//! The exported C functions (see `envoy_lambda_credentials_wire`), the library's only
//! `unsafe`. Each catches panics: none may cross into the module.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use envoy_lambda_credentials_wire::{ABI_VERSION, DoneFn, FetchAnswer, FetchRequest};
use zeroize::Zeroizing;

use crate::background::{self, Reply, failed};

/// The module's `ctx`, handed back to its `done` on the library's thread.
struct Ctx(*mut c_void);
// SAFETY: the module gives `ctx` to us to be passed back once to `done`, from any thread
// (its contract in the wire crate); we never dereference it.
unsafe impl Send for Ctx {}

fn answer_to(done: DoneFn, ctx: Ctx, answer: &FetchAnswer) {
    // Sized once so that growing never leaves a copy of the secret in freed memory.
    let mut bytes = Zeroizing::new(Vec::with_capacity(16 * 1024));
    if serde_json::to_writer(&mut *bytes, answer).is_err() {
        bytes.clear();
    }
    done(ctx.0, bytes.as_ptr(), bytes.len());
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_lambda_credentials_sdk_abi_version() -> u32 {
    ABI_VERSION
}

/// # Safety
/// `request` points to `len` readable bytes for the duration of the call (or `len` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn envoy_lambda_credentials_sdk_fetch(
    request: *const u8,
    len: usize,
    done: DoneFn,
    ctx: *mut c_void,
) {
    let bytes: &[u8] = if request.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: the caller's contract above; the bytes are only read during this call.
        unsafe { std::slice::from_raw_parts(request, len) }
    };
    let ctx = Ctx(ctx);
    let outcome = catch_unwind(AssertUnwindSafe(move || {
        let reply = Reply::new(move |answer| answer_to(done, ctx, &answer));
        match serde_json::from_slice::<FetchRequest>(bytes) {
            Ok(req) => background::fetch(req, reply),
            Err(e) => reply.send(failed(
                "invalid_configuration",
                &format!("unreadable fetch request: {e}"),
            )),
        }
    }));
    // A panic before the reply existed cannot be answered; the module times the fetch out.
    let _ = outcome;
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_lambda_credentials_sdk_stop() {
    let _ = catch_unwind(background::stop);
}
