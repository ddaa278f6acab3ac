//! RFC 9110 field syntax shared by what the filter sends: the signer's header names and the
//! headers `unwrap` takes from a function's answer.

/// RFC 9110 `tchar`s, as a table: names are checked on every request.
const TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
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
            );
        b += 1;
    }
    table
};

/// One byte of an RFC 9110 token.
pub(crate) fn is_tchar(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// A whole RFC 9110 token: not empty, `tchar`s only. Written without early exit so that it
/// vectorizes.
pub(crate) fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().fold(true, |ok, b| ok & is_tchar(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_rfc_9110_tchars() {
        for ok in [
            "content-type",
            "x-amz-date",
            "X_A.b~c|d",
            "!#$%&'*+-.^_`|~09azAZ",
        ] {
            assert!(is_token(ok), "{ok}");
        }
        for bad in [
            "", "a b", "a:b", "a\r\nb", "(x)", "a\"", "ä", "a/b", "a@b", "{}",
        ] {
            assert!(!is_token(bad), "{bad:?}");
        }
    }
}
