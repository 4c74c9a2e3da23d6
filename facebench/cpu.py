"""numpy's sorts on AMD Zen 4: take the AVX2 path, not the AVX-512 one, which is several times slower there.

numpy (1.25 and later) sorts, argsorts and partitions 32- and 64-bit values with x86-simd-sort, whose AVX-512
partition writes each vector with a compress-store to memory (``vcompresspd`` and kin). On AMD Zen 4 that
instruction form is microcoded (over 100 cycles, against a few on Intel and on Zen 5), so the AVX-512 sort
there is slower than numpy's AVX2 one by about 6x (measured on a Zen 4 EPYC, numpy 2.3.5 and 2.4.6: ``np.sort``
of 15.6M float64 in 1.09 s against 0.17 s; an IJB-C-sized run spends 1.3 s against 0.2 s on its ROC sort;
numpy issues x86-simd-sort#6 and numpy#32690). numpy chooses its code paths once, when it is imported,
from ``NPY_DISABLE_CPU_FEATURES``.

Rule: on a CPU whose ``/proc/cpuinfo`` says ``AuthenticAMD``, ``cpu family`` 25 (0x19: Zen 3 and Zen 4) and
``avx512f`` (only Zen 4 has it), ``facebench`` sets ``NPY_DISABLE_CPU_FEATURES`` to :data:`AVX512_FEATURES`
(the AVX-512 feature names of numpy 1.x and 2.x; numpy ignores names it does not know) before anything
imports numpy, unless the variable is already set (the user's choice stands) or
``FACEBENCH_NUMPY_AVX512=keep``. It changes which SIMD code numpy runs, not what it computes: sorted values
are the same, and every metric and saved array of an IJB-C-sized run was compared equal both ways. BLAS
(OpenBLAS's own dispatch) is not affected. Child processes (workers, torchrun, Ray) inherit the variable.
The Python API cannot do this for you once numpy is imported: set the variable in the shell.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

NUMPY_VARIABLE = "NPY_DISABLE_CPU_FEATURES"
OPT_OUT = "FACEBENCH_NUMPY_AVX512"
"""``FACEBENCH_NUMPY_AVX512=keep`` leaves numpy's AVX-512 paths on."""
AVX512_FEATURES = "X86_V4 AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR"
"""numpy's names for the AVX-512 dispatch targets: ``X86_V4`` and up in numpy 2.4+, ``AVX512F`` ... ``AVX512_SPR``
before."""
CPUINFO = Path("/proc/cpuinfo")


def first_cpu(cpuinfo: str) -> dict[str, str]:
    """The ``key: value`` fields of the first processor block of ``/proc/cpuinfo`` text."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def is_zen4(cpuinfo: str) -> bool:
    """Whether ``/proc/cpuinfo`` text describes an AMD Zen 4 CPU: vendor ``AuthenticAMD``, family 25 and the
    ``avx512f`` flag."""
    cpu = first_cpu(cpuinfo)
    return (cpu.get("vendor_id") == "AuthenticAMD" and cpu.get("cpu family") == "25"
            and "avx512f" in cpu.get("flags", "").split())


def numpy_setting(environ: Mapping[str, str], cpuinfo: str) -> str | None:
    """The value the module's rule gives :data:`NUMPY_VARIABLE` for this environment and ``/proc/cpuinfo``
    text, or None to leave it as it is."""
    if NUMPY_VARIABLE in environ or environ.get(OPT_OUT, "").lower() == "keep" or not is_zen4(cpuinfo):
        return None
    return AVX512_FEATURES


def avoid_slow_avx512_sort(environ: MutableMapping[str, str], cpuinfo: Path | None = None) -> bool:
    """Apply :func:`numpy_setting` to ``environ`` (``os.environ``: this process and its children), reading
    ``cpuinfo`` (default :data:`CPUINFO`); return whether it set :data:`NUMPY_VARIABLE`. Does nothing once
    numpy is imported (it would not take effect)."""
    if "numpy" in sys.modules:
        return False
    try:
        with open(cpuinfo or CPUINFO, encoding="utf-8", errors="replace") as handle:
            head = handle.read(16384)  # the first processor block is well within this
    except OSError:
        return False
    value = numpy_setting(environ, head)
    if value is None:
        return False
    environ[NUMPY_VARIABLE] = value
    return True
