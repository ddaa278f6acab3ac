//! Where the signer's stages write: a hash (SHA-256 or HMAC) on the request path, plus a copy
//! when the stage-by-stage API asks for one. Pieces are fed as runs, never byte by byte: each
//! `update` call costs a few nanoseconds whatever its length.

use hmac::Mac;
use sha2::{Digest, Sha256};

use super::signing_key::HmacSha256;

pub trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Sha256 {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        Digest::update(self, bytes);
    }
}

impl Sink for HmacSha256 {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        Mac::update(self, bytes);
    }
}

impl Sink for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A hash that also keeps what it was fed, if asked to.
pub struct Tee<'c, S> {
    pub hash: S,
    copy: Option<&'c mut Vec<u8>>,
}

impl<'c, S: Sink> Tee<'c, S> {
    pub fn new(hash: S, copy: Option<&'c mut Vec<u8>>) -> Self {
        Self { hash, copy }
    }
}

impl<S: Sink> Sink for Tee<'_, S> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.hash.put(bytes);
        if let Some(copy) = self.copy.as_deref_mut() {
            copy.extend_from_slice(bytes);
        }
    }
}

/// Lower-case hex of a 32-byte digest, on the stack.
pub fn hex32(digest: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    // Cannot fail for a 32-byte input: the output is exactly twice as long.
    let _ = hex::encode_to_slice(digest, &mut out);
    out
}
