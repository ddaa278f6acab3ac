//! The module against the real Envoy 1.40.0 binary's symbol table, and the C header against
//! what cbindgen generates from the hooks today.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Envoy binary the README's scripts install (`scripts/envoy_path.sh`).
fn envoy_binary() -> PathBuf {
    let out = Command::new(root().join("scripts/envoy_path.sh"))
        .output()
        .expect("run scripts/envoy_path.sh");
    assert!(
        out.status.success(),
        "Envoy is not installed: run scripts/bootstrap.sh ({})",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The release cdylib, the one Envoy loads (`cargo test` alone does not build the cdylib;
/// `scripts/test.sh` runs `cargo build --release` first).
fn module() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let so = target.join("release/libenvoy_lambda.so");
    assert!(
        so.exists(),
        "{} does not exist: run `cargo build --release` first",
        so.display()
    );
    so
}

fn dynamic_symbols(path: &Path, which: &str) -> Vec<String> {
    let out = Command::new("nm")
        .args(["-D", which, "--format=posix"])
        .arg(path)
        .output()
        .expect("nm (binutils) is installed");
    assert!(out.status.success(), "nm failed on {}", path.display());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|s| s.split('@').next().unwrap().to_owned())
        .collect()
}

#[test]
fn every_callback_we_import_exists_in_envoy_1_40() {
    let ours: Vec<String> = dynamic_symbols(&module(), "--undefined-only")
        .into_iter()
        .filter(|s| s.starts_with("envoy_dynamic_module_callback_"))
        .collect();
    assert!(
        ours.len() >= 10,
        "expected the module to import Envoy callbacks: {ours:?}"
    );
    let envoy = dynamic_symbols(&envoy_binary(), "--defined-only");
    let missing: Vec<&String> = ours.iter().filter(|s| !envoy.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "Envoy 1.40.0 does not export {missing:?}"
    );
}

#[test]
fn every_mandatory_hook_is_exported() {
    // The 1.40 loader refuses a filter config when one of these is missing.
    const MANDATORY: &[&str] = &[
        "program_init",
        "http_filter_config_new",
        "http_filter_config_destroy",
        "http_filter_new",
        "http_filter_destroy",
        "http_filter_request_headers",
        "http_filter_request_body",
        "http_filter_request_trailers",
        "http_filter_response_headers",
        "http_filter_response_body",
        "http_filter_response_trailers",
        "http_filter_stream_complete",
        "http_filter_scheduled",
        "http_filter_http_callout_done",
        "http_filter_http_stream_headers",
        "http_filter_http_stream_data",
        "http_filter_http_stream_trailers",
        "http_filter_http_stream_complete",
        "http_filter_http_stream_reset",
        "http_filter_downstream_above_write_buffer_high_watermark",
        "http_filter_downstream_below_write_buffer_low_watermark",
        // needed because our routes carry DynamicModuleFilterPerRoute
        "http_filter_per_route_config_new",
        "http_filter_per_route_config_destroy",
    ];
    let exported = dynamic_symbols(&module(), "--defined-only");
    for hook in MANDATORY {
        let name = format!("envoy_dynamic_module_on_{hook}");
        assert!(exported.contains(&name), "{name} is not exported");
    }
}

#[test]
fn checked_in_header_matches_the_hooks() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/envoy_lambda.h"));
    let checked_in = std::fs::read_to_string(root().join("include/envoy_lambda.h"))
        .expect("include/envoy_lambda.h exists");
    assert!(
        generated == checked_in,
        "include/envoy_lambda.h is stale: run scripts/regen-header.sh and commit it"
    );
}
