//! The library links the ABI layer, whose Envoy callbacks exist only inside the envoy process
//! (the main crate's build.rs says the same for its own tests); no fuzz target reaches them.

fn main() {
    println!("cargo:rustc-link-arg=-Wl,--unresolved-symbols=ignore-in-object-files");
}
