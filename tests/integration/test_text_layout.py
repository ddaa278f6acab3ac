"""The module's text starts with the functions Envoy runs (``build/text-order.ld``, linked by
``build.rs``), so the rest of it stays out of the process's RSS until it is used
(bench/README.md, "Memory").

The order file names functions by their path without the symbol hash. A rename, a refactor
or a toolchain that mangles differently makes its entries match nothing, and the module would
silently lose the layout: this test fails first. Regenerate the file with
``bench/text_order.py``.
"""

from __future__ import annotations

import struct

import pytest

import envoy_proc

pytestmark = pytest.mark.usefixtures("module_so")

# With the current file ~480 kB of the ~1.35 MB text are in `.text.executed`; a stale file
# leaves only the few unhashed names (the hooks), a few kB.
MIN_SHARE = 0.25


def sections(path) -> dict[str, int]:
    """Section name -> size, from the ELF64 little-endian section headers."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not an ELF64 LE file"
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def header(i):
        # sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size
        return struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)

    strtab_off = header(shstrndx)[4]  # sh_offset of the section-name table
    out = {}
    for i in range(shnum):
        name_off, _, _, _, _, size = header(i)
        end = data.index(b"\0", strtab_off + name_off)
        out[data[strtab_off + name_off:end].decode()] = size
    return out


def test_executed_functions_come_first_in_the_text():
    secs = sections(envoy_proc.MODULE_SO)
    assert ".text.executed" in secs, (
        "the module was linked without build/text-order.ld (build.rs)")
    executed, rest = secs[".text.executed"], secs.get(".text", 0)
    share = executed / (executed + rest)
    assert share >= MIN_SHARE, (
        f"only {executed} of {executed + rest} text bytes matched build/text-order.ld: "
        "its names are stale; regenerate it with bench/text_order.py")
