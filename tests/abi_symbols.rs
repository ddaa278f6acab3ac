//! The module against the real Envoy 1.40.0 binary's symbol table, and the C header against
//! what cbindgen generates from the hooks today.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What a fresh clone lacks, and the one command line that provides it.
const SET_UP: &str =
    "run `scripts/bootstrap.sh && cargo build --release` first (scripts/test.sh does both)";

/// The release cdylib (the one Envoy loads; `cargo test` alone does not build it) and the
/// Envoy binary the README's scripts install, or a failure with one line: everything that
/// is missing, and the set-up command.
fn set_up() -> (PathBuf, PathBuf) {
    let mut missing = Vec::new();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let so = target.join("release/libenvoy_lambda.so");
    if !so.exists() {
        missing.push(format!("{} does not exist", so.display()));
    }
    let envoy = match Command::new(root().join("scripts/envoy_path.sh")).output() {
        Ok(out) if out.status.success() => {
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        }
        Ok(out) => {
            let why = String::from_utf8_lossy(&out.stderr);
            let why = why.lines().next().unwrap_or("no message").trim().to_owned();
            missing.push(format!("Envoy 1.40.0 is not installed ({why})"));
            PathBuf::new()
        }
        Err(e) => {
            missing.push(format!("scripts/envoy_path.sh cannot run ({e})"));
            PathBuf::new()
        }
    };
    if !missing.is_empty() {
        panic!("abi_symbols: {}: {SET_UP}", missing.join("; "));
    }
    (so, envoy)
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
    let (module, envoy) = set_up();
    let ours: Vec<String> = dynamic_symbols(&module, "--undefined-only")
        .into_iter()
        .filter(|s| s.starts_with("envoy_dynamic_module_callback_"))
        .collect();
    assert!(
        ours.len() >= 10,
        "expected the module to import Envoy callbacks: {ours:?}"
    );
    let envoy = dynamic_symbols(&envoy, "--defined-only");
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
    let (module, _) = set_up();
    let exported = dynamic_symbols(&module, "--defined-only");
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

/// On a fresh clone (no venv, no release build) every test above fails with the one line
/// that says what to run. Runs this test binary again with the set-up pointed elsewhere.
#[test]
fn a_missing_set_up_fails_with_one_line_naming_the_command() {
    if std::env::var_os("ABI_SYMBOLS_CHILD").is_some() {
        return; // the child runs the other tests only
    }
    let nowhere = std::env::temp_dir().join("envoy-lambda-no-set-up");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "every_callback_we_import_exists_in_envoy_1_40",
            "every_mandatory_hook_is_exported",
            "--test-threads=1",
        ])
        .env("ABI_SYMBOLS_CHILD", "1")
        .env("CARGO_TARGET_DIR", &nowhere)
        .env("VENV", &nowhere)
        .env_remove("ENVOY_BIN")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    // libtest reports each failure's panic message on stdout.
    let output = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = output
        .lines()
        .filter(|l| l.starts_with("abi_symbols: "))
        .collect();
    assert_eq!(lines.len(), 2, "{output}");
    for line in lines {
        assert!(line.ends_with(SET_UP), "{line}");
        assert!(
            line.contains("libenvoy_lambda.so does not exist; "),
            "{line}"
        );
        assert!(line.contains("Envoy 1.40.0 is not installed"), "{line}");
    }
}
