"""The C core under other compilers and configurations than the one that built the extension.

Each compiler on the machine (gcc, clang) must compile every ``csrc/*.c`` file
warning-free in the default and the portable (``-DSECAGG_NO_SIMD``, 32-bit x86 where
gcc-multilib is installed) configurations; the Shamir field arithmetic is run in both
multiplication paths (``-DSECAGG_NO_INT128``, and i386 where it can be built) and
checked against Python's integers; and the runtime's CPUID/XGETBV detection must agree with the kernel's
view of this CPU.
"""

from __future__ import annotations

import platform
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from secagg import bindings

ROOT = Path(__file__).resolve().parents[1]
CSRC = ROOT / "csrc"
P = (1 << 61) - 1
COMPILERS = [cc for cc in ("gcc", "clang") if shutil.which(cc)]
CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror", f"-I{CSRC}"]
# What the Shamir driver links: shamir.c and the helpers it calls.
SHAMIR_SOURCES = [CSRC / "shamir.c", *(p for p in [CSRC / "memzero.c"] if p.exists())]

needs_cc = pytest.mark.skipif(not COMPILERS, reason="no C compiler (gcc or clang) on PATH")


def _m32_works() -> bool:
    """Whether gcc can build and run a 32-bit x86 program here (gcc-multilib): no __int128."""
    if not shutil.which("gcc") or platform.machine() != "x86_64":
        return False
    try:
        proc = subprocess.run(["gcc", "-m32", "-x", "c", "-", "-o", "/dev/null"],
                              input="int main(void){return 0;}", capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


M32 = _m32_works()


@needs_cc
@pytest.mark.parametrize("cc", COMPILERS)
@pytest.mark.parametrize("config", [[], ["-DSECAGG_NO_SIMD"]], ids=["default", "no-simd"])
def test_every_c_file_compiles_without_warnings(cc, config):
    # (-DSECAGG_NO_INT128 changes shamir.c only: the drivers below build it with -Werror.)
    if M32 and config:
        config = [*config, "-m32"]  # the portable core on a 32-bit target, where it matters
    # clang 14 rejected __builtin_cpu_supports("vaes") in runtime.c: this is that check.
    sources = sorted(str(p) for p in CSRC.glob("*.c"))
    proc = subprocess.run([cc, *CFLAGS, *config, "-fsyntax-only", *sources],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def shamir_drivers(tmp_path_factory) -> dict[str, Path]:
    """The Shamir driver built by each compiler, with and without unsigned __int128."""
    if not COMPILERS:
        pytest.skip("no C compiler (gcc or clang) on PATH")
    out = tmp_path_factory.mktemp("shamir")
    drivers = {}
    for cc in COMPILERS:
        for name, flags in (("int128", []), ("portable", ["-DSECAGG_NO_INT128"])):
            exe = out / f"{cc}-{name}"
            subprocess.run([cc, *CFLAGS, "-O2", *flags, "-o", str(exe),
                            str(ROOT / "tests" / "c" / "shamir_field.c"),
                            *map(str, SHAMIR_SOURCES)], check=True, timeout=120)
            drivers[f"{cc}-{name}"] = exe
    if M32:  # i386: 32-bit size_t and no unsigned __int128 at all
        exe = out / "gcc-i386"
        subprocess.run(["gcc", "-m32", *CFLAGS, "-O2", "-o", str(exe),
                        str(ROOT / "tests" / "c" / "shamir_field.c"), *map(str, SHAMIR_SOURCES)],
                       check=True, timeout=120)
        drivers["gcc-i386"] = exe
    return drivers


def _run(exe: Path, secret: list[int], coeffs: list[int], xs: list[int], t: int) -> dict:
    chunks = len(secret)
    text = " ".join(map(str, [len(xs), t, chunks, *secret, *coeffs, *xs]))
    proc = subprocess.run([str(exe)], input=text, capture_output=True, text=True, timeout=30,
                          check=True)
    result = {}
    for line in proc.stdout.splitlines():
        name, rc, *values = line.split()
        result[name] = (int(rc), [int(v) for v in values])
    return result


def _expected(secret: list[int], coeffs: list[int], xs: list[int], t: int) -> dict:
    chunks = len(secret)
    shares = []
    for x in xs:
        for c in range(chunks):
            poly = [secret[c]] + [coeffs[j * chunks + c] for j in range(t - 1)]
            shares.append(sum(a * pow(x, j, P) for j, a in enumerate(poly)) % P)
    lag = []
    for i in range(t):
        num = den = 1
        for j in range(t):
            if j != i:
                num = num * xs[j] % P
                den = den * (xs[j] - xs[i]) % P
        lag.append(num * pow(den, P - 2, P) % P)
    return {"split": (0, shares), "lagrange": (0, lag), "combine": (0, secret)}


EDGES = [0, 1, 2, P - 1, P - 2, 2**32 - 1, 2**32, 2**32 + 1, 2**60, (1 << 61) - 3, 0xFFFFFFFF00000001 % P]


def _cases() -> list[tuple[list[int], list[int], list[int], int]]:
    rng = random.Random(12)
    cases = [
        ([P - 1], [P - 1], [P - 1, 1], 2),  # the largest product, (p-1)^2
        ([0, 1, P - 1], [], [7], 1),
        (EDGES[:4], EDGES[4:8] + EDGES[7:11] + EDGES[:4], [P - 1, P - 2, 2**32, 5], 4),
    ]
    for _ in range(12):
        chunks, n = rng.randint(1, 5), rng.randint(1, 9)
        t = rng.randint(1, n)
        pick = lambda: rng.choice(EDGES) if rng.random() < 0.3 else rng.randrange(P)  # noqa: E731
        xs = rng.sample([x for x in EDGES if x] + [rng.randrange(1, P) for _ in range(n)], n)
        cases.append(([pick() for _ in range(chunks)], [pick() for _ in range((t - 1) * chunks)],
                      xs, t))
    return cases


@pytest.mark.parametrize("case", _cases())
def test_shamir_field_arithmetic_matches_big_integers_in_both_multiplication_paths(
    shamir_drivers, case
):
    secret, coeffs, xs, t = case
    want = _expected(secret, coeffs, xs, t)
    for name, exe in shamir_drivers.items():
        assert _run(exe, secret, coeffs, xs, t) == want, name


@pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64") or not Path("/proc/cpuinfo").exists()
    or not bindings.SIMD_BUILT,
    reason="needs the x86-64 SIMD build and Linux's /proc/cpuinfo",
)
def test_cpu_detection_agrees_with_the_kernel():
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    aesni = {"aes", "ssse3", "sse4_1"} <= flags
    want_chacha = {"scalar"} | {name for name, need in (
        ("sse2", {"sse2"}), ("avx2", {"sse2", "avx2"}), ("avx512", {"sse2", "avx2", "avx512f"}),
    ) if need <= flags}
    want_aes = {name for name, need in (
        ("aesni", set()), ("vaes-avx2", {"vaes", "avx2"}),
        ("vaes-avx512", {"vaes", "avx2", "avx512f", "avx512bw"}),
    ) if aesni and need <= flags}
    assert set(bindings.secagg_runtime_implementations("chacha20")) == want_chacha
    assert set(bindings.secagg_runtime_implementations("aes256ctr")) == want_aes
