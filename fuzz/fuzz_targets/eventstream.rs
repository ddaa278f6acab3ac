//! The eventstream decoder of `InvokeWithResponseStream` answers. Input: one byte giving the
//! chunk size (1–256), then the bytes of the stream, fed in chunks of that size.
//!
//! Never a panic; every message handed out has a payload within the limit; the bytes held for
//! an unfinished message never exceed one message; and a stream that decodes whole decodes to
//! the same payloads when fed in one piece.
#![no_main]

use envoy_lambda::lambda::eventstream::{Decoder, MAX_MESSAGE_LEN, MAX_PAYLOAD_LEN};
use libfuzzer_sys::fuzz_target;

fn decode(chunks: &mut dyn Iterator<Item = &[u8]>) -> Option<Vec<Vec<u8>>> {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for c in chunks {
        d.feed(c, &mut |m| {
            assert!(m.payload.len() <= MAX_PAYLOAD_LEN);
            out.push(m.payload.to_vec());
        })
        .ok()?;
        assert!(d.buffered() < MAX_MESSAGE_LEN);
    }
    d.finish().ok()?;
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&size, stream)) = data.split_first() else {
        return;
    };
    let size = usize::from(size) + 1;
    let chunked = decode(&mut stream.chunks(size));
    let whole = decode(&mut std::iter::once(stream));
    if let Some(events) = chunked {
        assert_eq!(Some(events), whole, "chunking changed the events");
    }
});
