//! The filter config Envoy hands over (StringValue JSON, or a Struct rendered to JSON): a
//! validated config or an error naming the field, never a panic.
#![no_main]

use envoy_lambda::config::{CredentialsFrom, FilterConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match FilterConfig::from_json(data) {
        Ok(config) => {
            assert!(
                config.upstreams().next().is_some(),
                "a config with no upstream"
            );
            for u in config.upstreams() {
                if let CredentialsFrom::Secret(secret) = &u.credentials {
                    assert!(
                        secret.get() < config.secrets().len(),
                        "secret index out of range"
                    );
                }
            }
            // What each request resolves its route's upstream against.
            for u in config.upstreams() {
                let found = config
                    .upstream(&u.name)
                    .expect("every upstream is found by name");
                assert!(std::sync::Arc::ptr_eq(found, u));
            }
        }
        Err(e) => assert!(!e.message.is_empty(), "an error without a message: {e:?}"),
    }
});
