//! SigV4 for Lambda Invoke: the payload hash, fed chunk by chunk, and the signature itself.

mod fast;
mod payload_hash;
mod signer;

pub use fast::{sign_invoke_fast, FastSigned};
pub use payload_hash::{PayloadDigest, PayloadHasher};
pub use signer::{
    sign_invoke, sign_request, InvokeToSign, RequestToSign, SignError, Signed, SignedHeaders,
    LAMBDA_SERVICE,
};
