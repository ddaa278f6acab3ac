//! What the fuzz targets share: the invariants they assert and the small text formats their
//! seeds are written in (so that the checked-in seeds are readable, realistic inputs).

/// RFC 9110 §5.6.2 `token`: what a header field name must be.
pub fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// RFC 9110 §5.5 field value: no control byte (CR, LF and NUL among them) other than tab.
pub fn is_field_value(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || !(b.is_ascii_control()))
}

/// Splits `data` at the first `n - 1` newlines: the last part keeps any further newlines.
pub fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    let mut rest = data;
    while out.len() + 1 < n {
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + 1..];
            }
            None => break,
        }
    }
    out.push(rest);
    out
}

/// AWS access key ids (`AKIA…` long-term, `ASIA…` temporary) that occur in `text`.
pub fn access_key_ids(text: &[u8]) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..text.len().saturating_sub(19) {
        let candidate = &text[i..i + 20];
        if (candidate.starts_with(b"AKIA") || candidate.starts_with(b"ASIA"))
            && candidate[4..]
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            ids.push(String::from_utf8_lossy(candidate).into_owned());
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_values() {
        assert!(is_token("x-amzn-requestid"));
        assert!(!is_token(""));
        assert!(!is_token("bad name"));
        assert!(!is_token("a:b"));
        assert!(is_field_value("a\tb ü"));
        assert!(!is_field_value("a\r\nb"));
        assert!(!is_field_value("a\0"));
        assert!(!is_field_value("a\x7f"));
    }

    #[test]
    fn splits_fields_and_finds_key_ids() {
        assert_eq!(fields(b"a\nb\nc\nd", 3), vec![&b"a"[..], b"b", b"c\nd"]);
        assert_eq!(fields(b"a", 3), vec![&b"a"[..]]);
        assert_eq!(
            access_key_ids(b"Credential=AKIAIOSFODNN7EXAMPLE/2015"),
            vec!["AKIAIOSFODNN7EXAMPLE".to_string()]
        );
    }
}
