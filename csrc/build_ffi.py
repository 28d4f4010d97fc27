"""cffi API-mode build of the C core.

Every ``csrc/*.c`` file is compiled into one extension, ``secagg._csecagg``.
The Python-visible declarations are the plain headers in ``csrc/cdef/``, one per
C module; ``secagg.h`` includes the same headers, so a declaration is written once.

Set ``SECAGG_SANITIZE=1`` to build with AddressSanitizer and UBSan (for tests only; see
scripts/sanitize.sh). ``-fno-wrapv`` undoes the ``-fwrapv`` in Python's own CFLAGS, which
would hide signed overflow from UBSan, and ``float-cast-overflow`` (not in gcc's
``undefined``) checks the float -> integer casts of fixedpoint.c. ``SECAGG_SANITIZE_FUZZER=1``
adds clang's ``-fsanitize=fuzzer-no-link`` so that atheris also sees coverage inside C.
"""

import os
from pathlib import Path

import cffi

_CSRC = Path(__file__).resolve().parent
_ROOT = _CSRC.parent


def _cdefs() -> str:
    return "\n".join(p.read_text() for p in sorted((_CSRC / "cdef").glob("*.h")))


def _sources() -> list[str]:
    # Paths relative to the project root, where setup.py runs.
    return [str(p.relative_to(_ROOT)) for p in sorted(_CSRC.glob("*.c"))]


def _compile_args() -> tuple[list[str], list[str]]:
    cflags = ["-std=c11", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-strict-aliasing"]
    ldflags: list[str] = []
    if os.environ.get("SECAGG_SANITIZE") == "1":
        kinds = "address,undefined,float-cast-overflow"
        if os.environ.get("SECAGG_SANITIZE_FUZZER") == "1":
            kinds += ",fuzzer-no-link"
        san = [f"-fsanitize={kinds}", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]
        cflags = [f for f in cflags if f != "-O3"] + ["-O1", "-g", "-fno-wrapv"] + san
        ldflags += san
    return cflags, ldflags


ffibuilder = cffi.FFI()
ffibuilder.cdef(_cdefs())
_cflags, _ldflags = _compile_args()
ffibuilder.set_source(
    "secagg._csecagg",
    '#include "secagg.h"',
    sources=_sources(),
    include_dirs=[str(_CSRC.relative_to(_ROOT))],
    extra_compile_args=_cflags,
    extra_link_args=_ldflags,
    depends=[str(p.relative_to(_ROOT)) for p in sorted(_CSRC.rglob("*.h"))],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
