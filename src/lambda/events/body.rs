//! The request body inside an event, written straight from Envoy's chunks into the event JSON:
//! serde_json's `collect_str` escapes whatever a `Display` writes as it is written, so a text
//! body is never joined into one string, and a binary one is base64-encoded chunk by chunk.

use std::fmt;

use base64::Engine as _;
use serde::{Serialize, Serializer};

/// A body in chunks, to appear in an event as text or as base64.
#[derive(Clone, Copy)]
pub struct ChunkedBody<'a> {
    pub chunks: &'a [&'a [u8]],
    pub base64: bool,
}

impl<'a> ChunkedBody<'a> {
    /// Decides text or base64 like API Gateway and ALB do: text when the content type is
    /// textual (or absent) and the bytes are valid UTF-8.
    pub fn new(chunks: &'a [&'a [u8]], content_type: Option<&str>) -> Self {
        let base64 = !(is_textual(content_type) && is_utf8(chunks));
        Self { chunks, base64 }
    }

    pub fn len(&self) -> usize {
        self.chunks.iter().map(|c| c.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn is_textual(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return true;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/javascript"
                | "application/xml"
                | "application/x-www-form-urlencoded"
                | "application/graphql"
        )
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
}

/// UTF-8 validity across chunk boundaries, without joining the chunks.
fn is_utf8(chunks: &[&[u8]]) -> bool {
    let mut carry = [0u8; 4];
    let mut carried = 0usize;
    for chunk in chunks {
        let mut rest: &[u8] = chunk;
        if carried > 0 {
            // Complete the character split at the previous boundary.
            while carried < 4 && !rest.is_empty() {
                carry[carried] = rest[0];
                carried += 1;
                rest = &rest[1..];
                match std::str::from_utf8(&carry[..carried]) {
                    Ok(_) => {
                        carried = 0;
                        break;
                    }
                    Err(e) if e.error_len().is_some() => return false,
                    Err(_) => {}
                }
            }
            if carried == 4 {
                return false;
            }
        }
        match std::str::from_utf8(rest) {
            Ok(_) => {}
            Err(e) if e.error_len().is_none() => {
                let tail = &rest[e.valid_up_to()..];
                carry[..tail.len()].copy_from_slice(tail);
                carried = tail.len();
            }
            Err(_) => return false,
        }
    }
    carried == 0
}

/// Writes the chunks as text, each character once, even when split between chunks.
struct Text<'a>(&'a [&'a [u8]]);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut carry = [0u8; 4];
        let mut carried = 0usize;
        for chunk in self.0 {
            let mut rest: &[u8] = chunk;
            while carried > 0 && !rest.is_empty() {
                carry[carried] = rest[0];
                carried += 1;
                rest = &rest[1..];
                if let Ok(s) = std::str::from_utf8(&carry[..carried]) {
                    f.write_str(s)?;
                    carried = 0;
                }
            }
            let valid = match std::str::from_utf8(rest) {
                Ok(s) => s,
                Err(e) => {
                    let (head, tail) = rest.split_at(e.valid_up_to());
                    carry[..tail.len().min(4)].copy_from_slice(&tail[..tail.len().min(4)]);
                    carried = tail.len().min(4);
                    // `head` is valid UTF-8 by construction.
                    std::str::from_utf8(head).map_err(|_| fmt::Error)?
                }
            };
            f.write_str(valid)?;
        }
        Ok(())
    }
}

/// Writes the chunks as one base64 string, carrying 0–2 bytes between chunks.
struct Base64<'a>(&'a [&'a [u8]]);

impl fmt::Display for Base64<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
        let mut out = [0u8; 4096];
        let mut carry = [0u8; 3];
        let mut carried = 0usize;
        for chunk in self.0 {
            let mut rest: &[u8] = chunk;
            if carried > 0 {
                let take = (3 - carried).min(rest.len());
                carry[carried..carried + take].copy_from_slice(&rest[..take]);
                carried += take;
                rest = &rest[take..];
                if carried < 3 {
                    continue;
                }
                let n = ENGINE
                    .encode_slice(carry, &mut out)
                    .map_err(|_| fmt::Error)?;
                f.write_str(std::str::from_utf8(&out[..n]).map_err(|_| fmt::Error)?)?;
            }
            let whole = rest.len() / 3 * 3;
            // 3072 input bytes → 4096 output bytes: one stack buffer's worth at a time.
            for piece in rest[..whole].chunks(3072) {
                let n = ENGINE
                    .encode_slice(piece, &mut out)
                    .map_err(|_| fmt::Error)?;
                f.write_str(std::str::from_utf8(&out[..n]).map_err(|_| fmt::Error)?)?;
            }
            let tail = &rest[whole..];
            carry[..tail.len()].copy_from_slice(tail);
            carried = tail.len();
        }
        if carried > 0 {
            let n = ENGINE
                .encode_slice(&carry[..carried], &mut out)
                .map_err(|_| fmt::Error)?;
            f.write_str(std::str::from_utf8(&out[..n]).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

impl Serialize for ChunkedBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.base64 {
            s.collect_str(&Base64(self.chunks))
        } else {
            s.collect_str(&Text(self.chunks))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split(body: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut start = 0;
        for &c in cuts.iter().chain(std::iter::once(&body.len())) {
            let c = c.clamp(start, body.len());
            out.push(body[start..c].to_vec());
            start = c;
        }
        out
    }

    fn json_of(chunks: &[Vec<u8>], ct: Option<&str>) -> (String, bool) {
        let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        let b = ChunkedBody::new(&refs, ct);
        (serde_json::to_string(&b).unwrap(), b.base64)
    }

    #[test]
    fn text_is_escaped_json() {
        let (j, b64) = json_of(
            &[
                b"{\"a\":".to_vec(),
                b"\"\xc3".to_vec(),
                b"\xa9\\\n\"}".to_vec(),
            ],
            Some("application/json"),
        );
        assert!(!b64);
        assert_eq!(
            serde_json::from_str::<String>(&j).unwrap(),
            "{\"a\":\"é\\\n\"}"
        );
    }

    #[test]
    fn binary_and_non_text_types_become_base64() {
        let (_, b64) = json_of(&[vec![0xff, 0x00]], Some("application/json"));
        assert!(b64, "invalid UTF-8 is base64 whatever the type");
        let (j, b64) = json_of(&[b"hello".to_vec()], Some("image/png"));
        assert!(b64);
        assert_eq!(j, "\"aGVsbG8=\"");
        assert!(!json_of(&[b"x".to_vec()], None).1);
        assert!(!json_of(&[b"x".to_vec()], Some("text/plain; charset=utf-8")).1);
        assert!(!json_of(&[b"x".to_vec()], Some("application/vnd.api+json")).1);
    }

    proptest! {
        #[test]
        fn base64_matches_one_shot_whatever_the_split(
            body in proptest::collection::vec(any::<u8>(), 0..5000),
            cuts in proptest::collection::vec(0usize..5000, 0..12),
        ) {
            let mut cuts = cuts; cuts.sort_unstable();
            let chunks = split(&body, &cuts);
            let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            let j = serde_json::to_string(&ChunkedBody { chunks: &refs, base64: true }).unwrap();
            let want = base64::engine::general_purpose::STANDARD.encode(&body);
            prop_assert_eq!(j, format!("\"{want}\""));
        }

        #[test]
        fn text_matches_one_shot_whatever_the_split(
            s in "\\PC{0,300}",
            cuts in proptest::collection::vec(0usize..1200, 0..12),
        ) {
            let body = s.as_bytes();
            let mut cuts = cuts; cuts.sort_unstable();
            let chunks = split(body, &cuts);
            let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            prop_assert!(is_utf8(&refs));
            let j = serde_json::to_string(&ChunkedBody { chunks: &refs, base64: false }).unwrap();
            prop_assert_eq!(j, serde_json::to_string(&s).unwrap());
        }
    }
}
