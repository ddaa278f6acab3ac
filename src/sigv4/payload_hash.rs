//! Incremental SHA-256 of the request payload.
//!
//! Invariant: the hasher is fed exactly the bytes that are sent upstream, in order, as Envoy
//! delivers them, so the digest equals `SHA-256(body)` whatever the chunking. `sha2` picks the
//! SHA-NI instructions at run time when the CPU has them.

use sha2::{Digest, Sha256};

#[derive(Clone, Default)]
pub struct PayloadHasher {
    sha: Sha256,
    len: u64,
}

/// A finished payload hash, with its lowercase hex form ready for `x-amz-content-sha256`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PayloadDigest {
    hex: [u8; 64],
    len: u64,
}

impl PayloadHasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.sha.update(chunk);
        self.len += chunk.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> PayloadDigest {
        let digest = self.sha.finalize();
        let mut hex = [0u8; 64];
        // Cannot fail: the output is exactly twice the 32-byte digest.
        let _ = hex::encode_to_slice(digest, &mut hex);
        PayloadDigest { hex, len: self.len }
    }
}

impl PayloadDigest {
    pub fn hex(&self) -> &str {
        // hex::encode_to_slice writes only ASCII hex digits.
        std::str::from_utf8(&self.hex).unwrap_or_default()
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for PayloadDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PayloadDigest({}, {} bytes)", self.hex(), self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_payload_is_the_well_known_digest() {
        assert_eq!(
            PayloadHasher::new().finish().hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn known_digest() {
        let mut h = PayloadHasher::new();
        h.update(b"{\"hello\":");
        h.update(b"\"world\"}");
        let d = h.finish();
        assert_eq!(d.len(), 17);
        assert_eq!(
            d.hex(),
            hex::encode(Sha256::digest(b"{\"hello\":\"world\"}"))
        );
    }

    proptest! {
        /// Whatever the split into chunks, the digest is that of the whole body.
        #[test]
        fn chunking_never_changes_the_digest(
            body in proptest::collection::vec(any::<u8>(), 0..20_000),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
        ) {
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(body.len() + 1)).collect();
            points.sort_unstable();
            let mut h = PayloadHasher::new();
            let mut start = 0;
            for p in points.into_iter().chain(std::iter::once(body.len())) {
                h.update(&body[start..p]);
                start = p;
            }
            let d = h.finish();
            prop_assert_eq!(d.len(), body.len() as u64);
            prop_assert_eq!(d.hex(), hex::encode(Sha256::digest(&body)));
        }
    }
}
