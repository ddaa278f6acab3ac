//! Generates the C header of the hooks this module exports (`envoy_lambda.h`) into OUT_DIR.
//! `checked_in_header_matches_the_hooks` in `tests/abi_symbols.rs` fails when
//! `include/envoy_lambda.h` differs from it; run `scripts/regen-header.sh` (or build with
//! ENVOY_LAMBDA_WRITE_HEADER=1) to refresh it.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/abi/hooks.rs");
    println!("cargo:rerun-if-changed=src/abi/ffi.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=ENVOY_LAMBDA_WRITE_HEADER");
    // Test and bench executables link the ABI layer too; Envoy's callbacks exist only inside
    // the envoy process, and those code paths never run outside it.
    println!("cargo:rustc-link-arg=-Wl,--unresolved-symbols=ignore-in-object-files");
    // The functions Envoy runs first in the text, the rest after them (bench/text_order.py
    // made the list): what is never run then stays out of RSS (bench/README.md, "Memory").
    println!("cargo:rerun-if-changed=build/text-order.ld");
    let order = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("build/text-order.ld");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-T,{}", order.display());

    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("envoy_lambda.h");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/abi/hooks.rs"))
        .with_src(crate_dir.join("src/abi/ffi.rs"))
        .generate()
        .expect("cbindgen can parse the hooks");
    bindings.write_to_file(&out);
    if env::var_os("ENVOY_LAMBDA_WRITE_HEADER").is_some() {
        bindings.write_to_file(crate_dir.join("include/envoy_lambda.h"));
    }
}
