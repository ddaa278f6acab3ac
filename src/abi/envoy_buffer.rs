//! Envoy-owned bytes, bound to a borrow of whatever Envoy guarantees them for (the running
//! hook, or the [`Host`](crate::host::Host) borrowed during it), so that no slice of Envoy's
//! memory can be kept past that guarantee: the compiler, not a comment, enforces it.
//!
//! This file holds the crate's only `slice::from_raw_parts`.

use std::marker::PhantomData;

use super::ffi::{Buffer, HttpHeader};

/// One run of a hook. What Envoy passes "valid for the duration of this call" (the config
/// bytes of config_new, the reply of a callout) is bound to a borrow of a `HookCall` made
/// inside the hook, so it cannot leave it. Not `Send`: the guarantee is for this thread.
pub struct HookCall(PhantomData<*const ()>);

impl HookCall {
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

/// Bytes Envoy owns (a config, a header name or value, a body chunk, a secret), readable while
/// `'a` lasts. No `Debug`: some of them are secrets.
#[derive(Clone, Copy)]
pub struct EnvoyBuffer<'a>(&'a [u8]);

impl<'a> EnvoyBuffer<'a> {
    /// Binds the bytes `raw` describes to the borrow of `owner`.
    ///
    /// # Safety
    /// `raw.ptr` must be null, or valid for `raw.len` bytes that Envoy leaves unchanged for as
    /// long as `owner` is borrowed.
    pub unsafe fn new<O: ?Sized>(owner: &'a O, raw: Buffer) -> Self {
        // SAFETY: as the caller guarantees.
        Self(unsafe { slice_or_empty(owner, raw.ptr, raw.len) })
    }

    /// The name and value of one of Envoy's headers, bound to the borrow of `owner`.
    ///
    /// # Safety
    /// Both ranges of `header` must be null or valid for as long as `owner` is borrowed.
    pub unsafe fn key_value<O: ?Sized>(owner: &'a O, header: &HttpHeader) -> (Self, Self) {
        // SAFETY: as the caller guarantees, for each range.
        unsafe {
            (
                Self::new(
                    owner,
                    Buffer {
                        ptr: header.key_ptr,
                        len: header.key_len,
                    },
                ),
                Self::new(
                    owner,
                    Buffer {
                        ptr: header.value_ptr,
                        len: header.value_len,
                    },
                ),
            )
        }
    }

    pub fn as_slice(self) -> &'a [u8] {
        self.0
    }

    /// The bytes as UTF-8 text, if they are.
    pub fn to_str(self) -> Option<&'a str> {
        std::str::from_utf8(self.0).ok()
    }
}

/// `len` elements at `ptr`, bound to the borrow of `owner`; none when `ptr` is null, whatever
/// `len` says (Envoy passes null and 0 for "nothing", and `from_raw_parts` on a null pointer
/// is undefined behaviour even for 0 elements).
///
/// # Safety
/// `ptr` must be null, or valid (aligned, initialised, unchanged) for `len` elements for as
/// long as `owner` is borrowed.
pub unsafe fn slice_or_empty<T, O: ?Sized>(_owner: &O, ptr: *const T, len: usize) -> &[T] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: non-null and valid for `len` elements while `_owner` is borrowed, as the
        // caller guarantees; the result's lifetime is that borrow's.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_no_length_is_empty() {
        let call = HookCall::new();
        // SAFETY: a null pointer is allowed.
        let s: &[u8] = unsafe { slice_or_empty(&call, std::ptr::null(), 0) };
        assert!(s.is_empty());
    }

    #[test]
    fn null_with_a_length_is_empty_not_a_read() {
        let call = HookCall::new();
        // SAFETY: a null pointer is allowed; its length is ignored.
        let s: &[HttpHeader] = unsafe { slice_or_empty(&call, std::ptr::null(), 5) };
        assert!(s.is_empty());
        // SAFETY: as above, through the buffer wrapper.
        let b = unsafe {
            EnvoyBuffer::new(
                &call,
                Buffer {
                    ptr: std::ptr::null(),
                    len: 7,
                },
            )
        };
        assert!(b.as_slice().is_empty());
    }

    #[test]
    fn non_null_reads_exactly_len_elements() {
        let data = [1u32, 2, 3, 4];
        // SAFETY: `data` is valid for 3 (of 4) elements and outlives its own borrow.
        let s = unsafe { slice_or_empty(&data, data.as_ptr(), 3) };
        assert_eq!(s, &[1, 2, 3]);
        // SAFETY: a non-null pointer with no length reads nothing.
        assert!(unsafe { slice_or_empty(&data, data.as_ptr(), 0) }.is_empty());
        let bytes = b"abc";
        // SAFETY: `bytes` outlives its own borrow.
        let b = unsafe { EnvoyBuffer::new(bytes, Buffer::from_slice(bytes)) };
        assert_eq!(b.as_slice(), b"abc");
    }

    #[test]
    fn a_header_reads_as_name_and_value() {
        let (k, v) = (b"content-type", b"application/json");
        let header = HttpHeader::from_pair(k, v);
        // SAFETY: both ranges point into the two literals, which outlive `header`.
        let (key, value) = unsafe { EnvoyBuffer::key_value(&header, &header) };
        assert_eq!(key.as_slice(), k);
        assert_eq!(value.to_str(), Some("application/json"));
        // SAFETY: an empty buffer is a null pointer.
        let empty = unsafe { EnvoyBuffer::new(&header, Buffer::EMPTY) };
        assert!(empty.as_slice().is_empty());
    }
}
