//! The AWS event stream framing (`application/vnd.amazon.eventstream`) that
//! `InvokeWithResponseStream` answers with, decoded incrementally as Envoy hands over body
//! chunks: a message may straddle chunks, a chunk may hold many messages.
//!
//! A message is `total_len: u32 BE`, `headers_len: u32 BE`, `prelude_crc: u32 BE` (CRC32 of
//! the first 8 bytes), the headers, the payload, and `message_crc: u32 BE` (CRC32 of all that
//! precedes it). A header is `name_len: u8`, the name (UTF-8), a value type byte and the value
//! (0/1 true/false, 2 i8, 3 i16, 4 i32, 5 i64, 6 bytes and 7 string with a `u16 BE` length,
//! 8 timestamp i64, 9 UUID 16 bytes).
//!
//! Zero-copy where the chunking allows it: a message that lies whole inside one chunk is
//! handed out as slices of that chunk. Only the bytes of a message cut by a chunk boundary are
//! copied, into one buffer per stream that holds at most one message. Every length and both
//! CRCs are checked before any byte of a message is handed out, and the prelude is checked as
//! soon as its 12 bytes are in, so a corrupt length never makes the decoder wait for (or
//! buffer) bytes that will not come.

use std::fmt;

pub const PRELUDE_LEN: usize = 12;
const CRC_LEN: usize = 4;
/// A message with no headers and no payload.
pub const MIN_MESSAGE_LEN: usize = PRELUDE_LEN + CRC_LEN;
/// Payloads above this are refused: Lambda's chunks are far smaller, and it bounds the
/// memory one stream can hold.
pub const MAX_PAYLOAD_LEN: usize = 1024 * 1024;
/// The AWS CRT's limit for the header section.
pub const MAX_HEADERS_LEN: usize = 128 * 1024;
pub const MAX_MESSAGE_LEN: usize = MIN_MESSAGE_LEN + MAX_HEADERS_LEN + MAX_PAYLOAD_LEN;

/// Why the byte stream is not a valid event stream. Never carries the stream's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    PreludeCrc,
    MessageCrc,
    /// `total_len` below the 16 bytes of an empty message.
    TooShort(u32),
    /// `total_len`, header section or payload above the limits.
    TooLarge(u32),
    /// `headers_len` does not fit in `total_len`.
    HeadersOverrun {
        headers_len: u32,
        total_len: u32,
    },
    BadHeader(&'static str),
    /// The stream ended inside a message, with this many of its bytes received.
    Truncated(usize),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PreludeCrc => f.write_str("prelude CRC mismatch"),
            Self::MessageCrc => f.write_str("message CRC mismatch"),
            Self::TooShort(n) => write!(f, "message length {n} is below the minimum of 16"),
            Self::TooLarge(n) => write!(
                f,
                "message of {n} bytes is above the limit ({MAX_PAYLOAD_LEN} bytes of payload, \
                 {MAX_HEADERS_LEN} of headers)"
            ),
            Self::HeadersOverrun {
                headers_len,
                total_len,
            } => write!(
                f,
                "headers length {headers_len} does not fit in message length {total_len}"
            ),
            Self::BadHeader(why) => write!(f, "bad header encoding: {why}"),
            Self::Truncated(n) => write!(f, "stream ended inside a message ({n} bytes of it)"),
        }
    }
}

impl FrameError {
    /// A short stable name, for metadata and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PreludeCrc => "prelude_crc",
            Self::MessageCrc => "message_crc",
            Self::TooShort(_) => "message_too_short",
            Self::TooLarge(_) => "message_too_large",
            Self::HeadersOverrun { .. } => "headers_overrun",
            Self::BadHeader(_) => "bad_header",
            Self::Truncated(_) => "truncated",
        }
    }
}

/// A header value, borrowed from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderValue<'a> {
    Bool(bool),
    Byte(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Bytes(&'a [u8]),
    String(&'a str),
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One checked message: its header section (already validated) and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    headers: &'a [u8],
    pub payload: &'a [u8],
}

impl<'a> Message<'a> {
    /// Every header, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, HeaderValue<'a>)> + 'a {
        let mut rest = self.headers;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            // Validated when the message was decoded.
            let (name, value, tail) = next_header(rest).ok()?;
            rest = tail;
            Some((name, value))
        })
    }

    /// The value of a string header (`:message-type`, `:event-type` …).
    pub fn str_header(&self, name: &str) -> Option<&'a str> {
        self.headers().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s),
            _ => None,
        })
    }
}

/// The incremental decoder of one stream.
#[derive(Debug, Default)]
pub struct Decoder {
    /// The start of a message cut by a chunk boundary (at most one message).
    partial: Vec<u8>,
    failed: Option<FrameError>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes what `chunk` completes, calling `on_message` for each message in order. After
    /// an error the decoder stays failed: later calls return the same error.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        on_message: &mut dyn FnMut(Message<'_>),
    ) -> Result<(), FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let r = self.feed_inner(chunk, on_message);
        if let Err(e) = r {
            self.failed = Some(e);
            self.partial = Vec::new();
        }
        r
    }

    fn feed_inner(
        &mut self,
        mut chunk: &[u8],
        on_message: &mut dyn FnMut(Message<'_>),
    ) -> Result<(), FrameError> {
        if !self.partial.is_empty() {
            if self.partial.len() < PRELUDE_LEN {
                let take = (PRELUDE_LEN - self.partial.len()).min(chunk.len());
                self.partial.extend_from_slice(&chunk[..take]);
                chunk = &chunk[take..];
                if self.partial.len() < PRELUDE_LEN {
                    return Ok(());
                }
            }
            let total = check_prelude(&self.partial)?;
            let take = (total - self.partial.len()).min(chunk.len());
            self.partial.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.partial.len() < total {
                return Ok(());
            }
            on_message(parse_message(&self.partial)?);
            self.partial.clear();
            // A large message leaves a large buffer: give it back rather than keep it per stream.
            if self.partial.capacity() > 64 * 1024 {
                self.partial = Vec::new();
            }
        }
        // Whole messages inside the chunk: handed out in place.
        while chunk.len() >= PRELUDE_LEN {
            let total = check_prelude(chunk)?;
            if chunk.len() < total {
                break;
            }
            let (message, rest) = chunk.split_at(total);
            on_message(parse_message(message)?);
            chunk = rest;
        }
        self.partial.extend_from_slice(chunk);
        Ok(())
    }

    /// The end of the stream: an error if it ended inside a message (or the decoder failed).
    pub fn finish(&self) -> Result<(), FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        match self.partial.len() {
            0 => Ok(()),
            n => Err(FrameError::Truncated(n)),
        }
    }

    /// Bytes held for a message not complete yet.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Checks the prelude at the start of `bytes` (at least 12 of them) and returns the message's
/// total length.
fn check_prelude(bytes: &[u8]) -> Result<usize, FrameError> {
    let total = be32(bytes, 0);
    let headers = be32(bytes, 4);
    if crc32fast::hash(&bytes[..8]) != be32(bytes, 8) {
        return Err(FrameError::PreludeCrc);
    }
    let total_len = total as usize;
    if total_len < MIN_MESSAGE_LEN {
        return Err(FrameError::TooShort(total));
    }
    if total_len > MAX_MESSAGE_LEN {
        return Err(FrameError::TooLarge(total));
    }
    let headers_len = headers as usize;
    if headers_len > total_len - MIN_MESSAGE_LEN {
        return Err(FrameError::HeadersOverrun {
            headers_len: headers,
            total_len: total,
        });
    }
    if headers_len > MAX_HEADERS_LEN || total_len - MIN_MESSAGE_LEN - headers_len > MAX_PAYLOAD_LEN
    {
        return Err(FrameError::TooLarge(total));
    }
    Ok(total_len)
}

/// `frame` is exactly one message whose prelude was checked.
fn parse_message(frame: &[u8]) -> Result<Message<'_>, FrameError> {
    let crc_at = frame.len() - CRC_LEN;
    if crc32fast::hash(&frame[..crc_at]) != be32(frame, crc_at) {
        return Err(FrameError::MessageCrc);
    }
    let headers_end = PRELUDE_LEN + be32(frame, 4) as usize;
    let headers = &frame[PRELUDE_LEN..headers_end];
    let mut rest = headers;
    while !rest.is_empty() {
        rest = next_header(rest)?.2;
    }
    Ok(Message {
        headers,
        payload: &frame[headers_end..crc_at],
    })
}

/// The first header of `h` and what follows it.
fn next_header(h: &[u8]) -> Result<(&str, HeaderValue<'_>, &[u8]), FrameError> {
    let overrun = FrameError::BadHeader("a header runs past the header section");
    let (&name_len, rest) = h.split_first().ok_or(overrun)?;
    if name_len == 0 {
        return Err(FrameError::BadHeader("empty header name"));
    }
    let (name, rest) = split(rest, name_len as usize).ok_or(overrun)?;
    let name =
        std::str::from_utf8(name).map_err(|_| FrameError::BadHeader("header name not UTF-8"))?;
    let (&kind, rest) = rest.split_first().ok_or(overrun)?;
    let fixed = |n: usize| split(rest, n).ok_or(overrun);
    let (value, rest) = match kind {
        0 => (HeaderValue::Bool(true), rest),
        1 => (HeaderValue::Bool(false), rest),
        2 => {
            let (v, r) = fixed(1)?;
            (HeaderValue::Byte(v[0] as i8), r)
        }
        3 => {
            let (v, r) = fixed(2)?;
            (HeaderValue::Int16(i16::from_be_bytes([v[0], v[1]])), r)
        }
        4 => {
            let (v, r) = fixed(4)?;
            (HeaderValue::Int32(be32(v, 0) as i32), r)
        }
        5 | 8 => {
            let (v, r) = fixed(8)?;
            let mut b = [0u8; 8];
            b.copy_from_slice(v);
            let n = i64::from_be_bytes(b);
            let value = if kind == 5 {
                HeaderValue::Int64(n)
            } else {
                HeaderValue::Timestamp(n)
            };
            (value, r)
        }
        6 | 7 => {
            let (len, r) = fixed(2)?;
            let (v, r) = split(r, u16::from_be_bytes([len[0], len[1]]) as usize).ok_or(overrun)?;
            if kind == 6 {
                (HeaderValue::Bytes(v), r)
            } else {
                let s = std::str::from_utf8(v)
                    .map_err(|_| FrameError::BadHeader("string value not UTF-8"))?;
                (HeaderValue::String(s), r)
            }
        }
        9 => {
            let (v, r) = fixed(16)?;
            let mut b = [0u8; 16];
            b.copy_from_slice(v);
            (HeaderValue::Uuid(b), r)
        }
        _ => return Err(FrameError::BadHeader("unknown value type")),
    };
    Ok((name, value, rest))
}

fn split(b: &[u8], n: usize) -> Option<(&[u8], &[u8])> {
    (b.len() >= n).then(|| b.split_at(n))
}

/// Encodes one message with string headers: for tests, benches, fuzz seeds and local peers.
pub fn encode_message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = MIN_MESSAGE_LEN + h.len() + payload.len();
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&(total as u32).to_be_bytes());
    m.extend_from_slice(&(h.len() as u32).to_be_bytes());
    m.extend_from_slice(&crc32fast::hash(&m).to_be_bytes());
    m.extend_from_slice(&h);
    m.extend_from_slice(payload);
    m.extend_from_slice(&crc32fast::hash(&m).to_be_bytes());
    m
}

/// A Lambda `PayloadChunk` event carrying `payload`.
pub fn payload_chunk(payload: &[u8]) -> Vec<u8> {
    encode_message(
        &[
            (":event-type", "PayloadChunk"),
            (":content-type", "application/octet-stream"),
            (":message-type", "event"),
        ],
        payload,
    )
}

/// A Lambda `InvokeComplete` event with this JSON body.
pub fn invoke_complete(json: &str) -> Vec<u8> {
    encode_message(
        &[
            (":event-type", "InvokeComplete"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        json.as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (event type, payload) of every message, decoding `chunks` in order.
    fn decode(chunks: &[&[u8]]) -> Result<Vec<(String, Vec<u8>)>, FrameError> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut |m| {
                out.push((
                    m.str_header(":event-type").unwrap_or("").to_owned(),
                    m.payload.to_vec(),
                ))
            })?;
        }
        d.finish()?;
        Ok(out)
    }

    fn stream() -> Vec<u8> {
        let mut s = payload_chunk(b"hello ");
        s.extend(payload_chunk(b""));
        s.extend(payload_chunk(&[0u8; 300]));
        s.extend(invoke_complete("{}"));
        s
    }

    #[test]
    fn decodes_lambda_events() {
        let events = decode(&[&stream()]).unwrap();
        assert_eq!(events.len(), 4);
        assert_eq!(events[0], ("PayloadChunk".into(), b"hello ".to_vec()));
        assert_eq!(events[2].1.len(), 300);
        assert_eq!(events[3], ("InvokeComplete".into(), b"{}".to_vec()));
    }

    #[test]
    fn a_message_split_anywhere_decodes_the_same() {
        let s = stream();
        let whole = decode(&[&s]).unwrap();
        for at in 0..s.len() {
            assert_eq!(
                decode(&[&s[..at], &s[at..]]).unwrap(),
                whole,
                "split at {at}"
            );
        }
        let bytes: Vec<&[u8]> = s.chunks(1).collect();
        assert_eq!(decode(&bytes).unwrap(), whole);
    }

    #[test]
    fn every_header_type_is_read() {
        let mut h = Vec::new();
        let mut put = |name: &str, kind: u8, value: &[u8]| {
            h.push(name.len() as u8);
            h.extend_from_slice(name.as_bytes());
            h.push(kind);
            h.extend_from_slice(value);
        };
        put("t", 0, &[]);
        put("f", 1, &[]);
        put("b", 2, &[0xff]);
        put("s", 3, &[0x01, 0x02]);
        put("i", 4, &[0, 0, 0, 7]);
        put("l", 5, &[0, 0, 0, 0, 0, 0, 0, 8]);
        put("y", 6, &[0, 2, 0xde, 0xad]);
        put("x", 7, &[0, 2, b'o', b'k']);
        put("ts", 8, &[0, 0, 0, 0, 0, 0, 0, 9]);
        put("u", 9, &[3u8; 16]);
        let m = raw_message(&h, b"p");
        let mut d = Decoder::new();
        let mut seen = Vec::new();
        d.feed(&m, &mut |msg| {
            seen = msg
                .headers()
                .map(|(n, v)| (n.to_owned(), format!("{v:?}")))
                .collect();
            assert_eq!(msg.payload, b"p");
            assert_eq!(msg.str_header("x"), Some("ok"));
            assert_eq!(msg.str_header("i"), None);
        })
        .unwrap();
        assert_eq!(seen.len(), 10);
        assert_eq!(seen[2].1, "Byte(-1)");
        assert_eq!(seen[3].1, "Int16(258)");
        assert_eq!(seen[6].1, "Bytes([222, 173])");
        assert_eq!(seen[9].1, format!("Uuid({:?})", [3u8; 16]));
    }

    /// A message with a given header section (CRCs right).
    fn raw_message(headers: &[u8], payload: &[u8]) -> Vec<u8> {
        let total = MIN_MESSAGE_LEN + headers.len() + payload.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(total as u32).to_be_bytes());
        m.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        m.extend_from_slice(&crc32fast::hash(&m).to_be_bytes());
        m.extend_from_slice(headers);
        m.extend_from_slice(payload);
        m.extend_from_slice(&crc32fast::hash(&m).to_be_bytes());
        m
    }

    /// Re-seals a tampered message's prelude CRC (and its message CRC), to reach later checks.
    fn reseal(m: &mut [u8]) {
        let crc = crc32fast::hash(&m[..8]);
        m[8..12].copy_from_slice(&crc.to_be_bytes());
        let at = m.len() - 4;
        let crc = crc32fast::hash(&m[..at]);
        m[at..].copy_from_slice(&crc.to_be_bytes());
    }

    #[test]
    fn every_check_refuses_its_defect() {
        let good = payload_chunk(b"data");
        let mut m = good.clone();
        m[13] ^= 1;
        assert_eq!(decode(&[&m]), Err(FrameError::MessageCrc));
        let mut m = good.clone();
        m[9] ^= 1;
        assert_eq!(decode(&[&m]), Err(FrameError::PreludeCrc));
        let mut m = good.clone();
        m[3] = 15;
        m[4..8].copy_from_slice(&0u32.to_be_bytes());
        reseal(&mut m);
        assert_eq!(decode(&[&m]), Err(FrameError::TooShort(15)));
        let mut m = good.clone();
        m[4..8].copy_from_slice(&(good.len() as u32).to_be_bytes());
        reseal(&mut m);
        assert!(matches!(
            decode(&[&m]),
            Err(FrameError::HeadersOverrun { .. })
        ));
        // A header section that does not parse: a name running past its end.
        let m = raw_message(&[5, b'a'], b"");
        assert!(matches!(decode(&[&m]), Err(FrameError::BadHeader(_))));
        let m = raw_message(&[1, b'a', 42], b"");
        assert_eq!(
            decode(&[&m]),
            Err(FrameError::BadHeader("unknown value type"))
        );
        let m = raw_message(&[1, b'a', 7, 0, 1, 0xff], b"");
        assert_eq!(
            decode(&[&m]),
            Err(FrameError::BadHeader("string value not UTF-8"))
        );
        let m = raw_message(&[0, 0], b"");
        assert_eq!(
            decode(&[&m]),
            Err(FrameError::BadHeader("empty header name"))
        );
        assert_eq!(
            decode(&[&good[..good.len() - 1]]),
            Err(FrameError::Truncated(good.len() - 1))
        );
        assert_eq!(decode(&[&good[..5]]), Err(FrameError::Truncated(5)));
    }

    #[test]
    fn oversized_messages_are_refused_at_their_prelude() {
        let mut prelude = Vec::new();
        prelude.extend_from_slice(&((MAX_MESSAGE_LEN + 1) as u32).to_be_bytes());
        prelude.extend_from_slice(&0u32.to_be_bytes());
        prelude.extend_from_slice(&crc32fast::hash(&prelude).to_be_bytes());
        let mut d = Decoder::new();
        let r = d.feed(&prelude, &mut |_| panic!("no message"));
        assert!(matches!(r, Err(FrameError::TooLarge(_))));
        // Split: the prelude is checked as soon as its 12 bytes are in, nothing more is held.
        let mut d = Decoder::new();
        d.feed(&prelude[..7], &mut |_| {}).unwrap();
        assert!(d.feed(&prelude[7..], &mut |_| {}).is_err());
        assert_eq!(d.buffered(), 0);
        assert!(d.feed(b"more", &mut |_| {}).is_err(), "stays failed");
        // The largest payload allowed passes.
        let big = payload_chunk(&vec![7u8; MAX_PAYLOAD_LEN]);
        assert_eq!(decode(&[&big]).unwrap()[0].1.len(), MAX_PAYLOAD_LEN);
    }

    #[test]
    fn at_most_one_message_is_held() {
        let one = payload_chunk(&[1u8; 1000]);
        let mut d = Decoder::new();
        let mut n = 0;
        for _ in 0..50 {
            for piece in one.chunks(333) {
                d.feed(piece, &mut |_| n += 1).unwrap();
                assert!(d.buffered() < one.len());
            }
        }
        assert_eq!(n, 50);
        d.finish().unwrap();
    }

    fn arb_stream() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..8).prop_map(
            |payloads| {
                let mut s = Vec::new();
                for p in &payloads {
                    s.extend(payload_chunk(p));
                }
                s.extend(invoke_complete(r#"{"ErrorCode":"X"}"#));
                s
            },
        )
    }

    proptest! {
        #[test]
        fn any_split_decodes_to_the_same_events(
            s in arb_stream(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let whole = decode(&[&s]).unwrap();
            let mut at: Vec<usize> = cuts.iter().map(|i| i.index(s.len() + 1)).collect();
            at.sort_unstable();
            let mut chunks = Vec::new();
            let mut from = 0;
            for a in at {
                chunks.push(&s[from..a]);
                from = a;
            }
            chunks.push(&s[from..]);
            prop_assert_eq!(decode(&chunks).unwrap(), whole);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
            chunk in 1usize..64,
        ) {
            let pieces: Vec<&[u8]> = bytes.chunks(chunk).collect();
            let _ = decode(&pieces);
        }

        #[test]
        fn a_flipped_bit_is_never_passed_on(s in arb_stream(), bit in any::<prop::sample::Index>()) {
            let mut bad = s.clone();
            let i = bit.index(bad.len() * 8);
            bad[i / 8] ^= 1 << (i % 8);
            // CRC32 detects every single-bit error, wherever it falls.
            prop_assert!(decode(&[&bad]).is_err());
        }
    }
}
