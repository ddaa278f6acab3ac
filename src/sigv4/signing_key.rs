//! The signing key, `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
//! "aws4_request")`, cached per worker thread.
//!
//! Four HMACs per request would be most of the signer's time; the key only changes with the
//! day, the region, the service and the secret, so a few of them are kept per thread, found
//! by the identity of the parsed credentials (a rotated secret parses into new ones).

use std::cell::RefCell;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::credentials::AwsCredentials;

pub type HmacSha256 = Hmac<Sha256>;

pub type SigningKey = Zeroizing<[u8; 32]>;

/// An HMAC keyed with `key`.
pub fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = keyed(key);
    m.update(data);
    m.finalize().into_bytes().into()
}

/// The key, derived afresh.
pub fn derive(secret: &str, date: &[u8; 8], region: &str, service: &str) -> SigningKey {
    let mut k_secret = Zeroizing::new(Vec::with_capacity(4 + secret.len()));
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret.as_bytes());
    let k_date = Zeroizing::new(hmac(&k_secret, date));
    let k_region = Zeroizing::new(hmac(&*k_date, region.as_bytes()));
    let k_service = Zeroizing::new(hmac(&*k_region, service.as_bytes()));
    Zeroizing::new(hmac(&*k_service, b"aws4_request"))
}

struct CachedKey {
    creds: Arc<AwsCredentials>,
    date: [u8; 8],
    region: Box<str>,
    service: Box<str>,
    key: SigningKey,
}

/// Per worker thread: a handful of (credentials, day, region, service) keys.
const KEYS_PER_THREAD: usize = 8;

thread_local! {
    static KEYS: RefCell<Vec<CachedKey>> = const { RefCell::new(Vec::new()) };
}

/// The key for `creds` on `date` in `region` for `service`, from this thread's cache.
pub fn cached(
    creds: &Arc<AwsCredentials>,
    date: &[u8; 8],
    region: &str,
    service: &str,
) -> SigningKey {
    KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        if let Some(k) = keys.iter().find(|k| {
            Arc::ptr_eq(&k.creds, creds)
                && k.date == *date
                && &*k.region == region
                && &*k.service == service
        }) {
            return k.key.clone();
        }
        let key = derive(&creds.secret_key, date, region, service);
        if keys.len() >= KEYS_PER_THREAD {
            keys.remove(0); // the oldest: rotated secrets and past days age out
        }
        keys.push(CachedKey {
            creds: Arc::clone(creds),
            date: *date,
            region: region.into(),
            service: service.into(),
            key: key.clone(),
        });
        key
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(secret: &str) -> Arc<AwsCredentials> {
        let yaml = format!("access_key: AKIDEXAMPLE\nsecret_key: {secret}\n");
        Arc::new(AwsCredentials::parse(yaml.as_bytes()).unwrap())
    }

    /// The key of the SigV4 documentation's example (secret, 20150830, us-east-1, iam).
    #[test]
    fn derives_the_documented_key() {
        let key = derive(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            b"20150830",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(*key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    #[test]
    fn the_cache_follows_date_region_service_and_rotation() {
        let a = creds("one");
        let b = creds("two");
        for (c, date, region, service) in [
            (&a, b"20150830", "us-east-1", "lambda"),
            (&a, b"20150831", "us-east-1", "lambda"),
            (&a, b"20150831", "eu-west-1", "lambda"),
            (&a, b"20150831", "eu-west-1", "service"),
            (&b, b"20150831", "eu-west-1", "service"),
            (&a, b"20150830", "us-east-1", "lambda"),
        ] {
            let secret: &str = &c.secret_key;
            assert_eq!(
                *cached(c, date, region, service),
                *derive(secret, date, region, service)
            );
        }
        // More combinations than the cache holds: the oldest go, the answers stay right.
        for day in 10..40u32 {
            let date: [u8; 8] = format!("201508{day:02}").into_bytes().try_into().unwrap();
            assert_eq!(
                *cached(&a, &date, "r", "s"),
                *derive("one", &date, "r", "s")
            );
        }
    }
}
