//! The signed headers: collected in a fixed array, sorted by lower-case name (stable, so
//! repeated names keep their order), written as canonical header lines and as the
//! `SignedHeaders` list.
//!
//! Canonical form, as `aws-sigv4` writes it: the name in lower case; the value with leading
//! and trailing spaces removed and runs of spaces folded to one; the values of a repeated
//! name joined by `,` in the order given.

use std::cmp::Ordering;

use super::error::SignError;
use super::sink::Sink;
use crate::http_field::is_token;

/// Room for every header an Invoke or a listing signs, and for the AWS test suite's.
pub const MAX_SIGNED_HEADERS: usize = 16;

/// Headers the signer computes itself; a caller that passes one gets an error.
const SET_BY_SIGNER: [&str; 4] = [
    "authorization",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
];

pub struct HeaderSet<'a> {
    entries: [(&'a str, &'a str); MAX_SIGNED_HEADERS],
    len: usize,
    /// Every name is lower case already (always so on the request path): plain comparisons.
    all_lower: bool,
}

/// A byte below 0x20 but tab, or DEL. Written without early exit so that it vectorizes: the
/// values are scanned on every request.
fn has_control_byte(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |found, &b| {
        found | ((b < 0x20) & (b != b'\t')) | (b == 0x7f)
    })
}

fn compare_names(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// `name` in lower case, written in runs (names on the request path are lower case already).
fn write_lower(name: &str, sink: &mut impl Sink) {
    let bytes = name.as_bytes();
    if !bytes.iter().any(u8::is_ascii_uppercase) {
        sink.put(bytes);
        return;
    }
    let mut run = 0;
    for (i, b) in bytes.iter().enumerate() {
        if b.is_ascii_uppercase() {
            sink.put(&bytes[run..i]);
            sink.put(&[b.to_ascii_lowercase()]);
            run = i + 1;
        }
    }
    sink.put(&bytes[run..]);
}

/// Where `bytes` has two spaces in a row. (A byte loop: `str::find("  ")` sets up a
/// substring searcher on every call, which costs more than these short values.)
fn double_space(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"  ")
}

/// `value` trimmed of spaces, with each run of spaces folded to one.
fn write_trimmed(value: &str, sink: &mut impl Sink) {
    let bytes = value.as_bytes();
    // Most values (hashes, dates, tokens, hosts) have no space at all.
    if !bytes.iter().fold(false, |found, &b| found | (b == b' ')) {
        sink.put(bytes);
        return;
    }
    let mut rest = value.trim_matches(' ').as_bytes();
    while let Some(i) = double_space(rest) {
        sink.put(&rest[..=i]);
        rest = &rest[i..];
        while let [b' ', tail @ ..] = rest {
            rest = tail;
        }
    }
    sink.put(rest);
}

impl<'a> HeaderSet<'a> {
    pub fn new() -> Self {
        Self {
            entries: [("", ""); MAX_SIGNED_HEADERS],
            len: 0,
            all_lower: true,
        }
    }

    /// A header from the caller: a valid name the signer does not set itself, a value that
    /// can be sent (no control character but tab).
    pub fn push_from_caller(&mut self, name: &'a str, value: &'a str) -> Result<(), SignError> {
        if !is_token(name) {
            return Err(SignError::InvalidHeaderName);
        }
        if let Some(own) = SET_BY_SIGNER.iter().find(|n| n.eq_ignore_ascii_case(name)) {
            return Err(SignError::SetBySigner(own));
        }
        if has_control_byte(value.as_bytes()) {
            return Err(SignError::ControlCharacter(name.to_owned()));
        }
        self.push(name, value)
    }

    /// A header the signer adds (lower-case name, plain value).
    pub fn push(&mut self, name: &'a str, value: &'a str) -> Result<(), SignError> {
        if self.len == MAX_SIGNED_HEADERS {
            return Err(SignError::TooManyHeaders);
        }
        self.entries[self.len] = (name, value);
        self.len += 1;
        self.all_lower &= !name.bytes().any(|b| b.is_ascii_uppercase());
        Ok(())
    }

    /// Sorts by lower-case name; insertion sort: stable, no allocation, and the set is small.
    pub fn sort(&mut self) {
        let compare = if self.all_lower {
            str::cmp
        } else {
            compare_names
        };
        let entries = &mut self.entries[..self.len];
        for i in 1..entries.len() {
            let mut j = i;
            while j > 0 && compare(entries[j - 1].0, entries[j].0) == Ordering::Greater {
                entries.swap(j - 1, j);
                j -= 1;
            }
        }
    }

    /// Whether entry `i` has the same name as the one before it (after [`Self::sort`]).
    fn repeats_name(&self, i: usize) -> bool {
        if i == 0 {
            return false;
        }
        let (a, b) = (self.entries[i - 1].0, self.entries[i].0);
        if self.all_lower {
            a == b
        } else {
            a.eq_ignore_ascii_case(b)
        }
    }

    fn write_name(&self, name: &str, sink: &mut impl Sink) {
        if self.all_lower {
            sink.put(name.as_bytes());
        } else {
            write_lower(name, sink);
        }
    }

    /// `name:value[,value…]\n` for each name.
    pub fn write_canonical(&self, sink: &mut impl Sink) {
        for (i, (name, value)) in self.entries[..self.len].iter().enumerate() {
            if self.repeats_name(i) {
                sink.put(b",");
            } else {
                if i > 0 {
                    sink.put(b"\n");
                }
                self.write_name(name, sink);
                sink.put(b":");
            }
            write_trimmed(value, sink);
        }
        if self.len > 0 {
            sink.put(b"\n");
        }
    }

    /// The length of [`Self::write_names`]'s output.
    pub fn names_len(&self) -> usize {
        (0..self.len)
            .filter(|&i| !self.repeats_name(i))
            .map(|i| self.entries[i].0.len() + 1)
            .sum::<usize>()
            .saturating_sub(1)
    }

    /// `name;name;…`: the `SignedHeaders` list.
    pub fn write_names(&self, sink: &mut impl Sink) {
        for (i, (name, _)) in self.entries[..self.len].iter().enumerate() {
            if self.repeats_name(i) {
                continue;
            }
            if i > 0 {
                sink.put(b";");
            }
            self.write_name(name, sink);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(headers: &[(&str, &str)]) -> (String, String) {
        let mut set = HeaderSet::new();
        for (k, v) in headers {
            set.push_from_caller(k, v).unwrap();
        }
        set.sort();
        let (mut lines, mut names) = (Vec::new(), Vec::new());
        set.write_canonical(&mut lines);
        set.write_names(&mut names);
        (
            String::from_utf8(lines).unwrap(),
            String::from_utf8(names).unwrap(),
        )
    }

    #[test]
    fn names_are_lowered_and_sorted_values_trimmed_and_joined() {
        let (lines, names) = canonical(&[
            ("My-Header1", "  a   b  c "),
            ("host", "h"),
            ("my-header1", "second"),
            ("Alpha", "x"),
        ]);
        assert_eq!(lines, "alpha:x\nhost:h\nmy-header1:a b c,second\n");
        assert_eq!(names, "alpha;host;my-header1");
    }

    #[test]
    fn the_signer_own_headers_and_bad_ones_are_refused() {
        let mut set = HeaderSet::new();
        assert!(set.push_from_caller("X-Amz-Date", "x").is_err());
        assert!(set.push_from_caller("authorization", "x").is_err());
        assert!(set.push_from_caller("bad name", "x").is_err());
        assert!(set.push_from_caller("", "x").is_err());
        assert!(set.push_from_caller("ok", "a\nb").is_err());
        for _ in 0..MAX_SIGNED_HEADERS {
            set.push_from_caller("ok", "v").unwrap();
        }
        assert!(set.push_from_caller("ok", "v").is_err());
    }
}
