"""numpy's AVX-512 sorts turned off on AMD Zen 4 only (facebench.cpu), before numpy is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facebench import cpu

FLAGS_AVX2 = "fpu sse sse2 avx avx2 fma bmi2"
FLAGS_AVX512 = FLAGS_AVX2 + " avx512f avx512dq avx512bw avx512vl"


def cpuinfo(vendor: str, family: int, flags: str, processors: int = 2) -> str:
    block = (f"processor\t: {{n}}\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: 17\n"
             f"model name\t: a CPU\nflags\t\t: {flags}\n")
    return "\n".join(block.format(n=n) for n in range(processors))


@pytest.mark.parametrize("vendor, family, flags, zen4", [
    ("AuthenticAMD", 25, FLAGS_AVX512, True),    # Zen 4 (family 19h with AVX-512)
    ("AuthenticAMD", 25, FLAGS_AVX2, False),     # Zen 3 (family 19h, no AVX-512)
    ("AuthenticAMD", 26, FLAGS_AVX512, False),   # Zen 5 (family 1Ah: compress-store is fast)
    ("GenuineIntel", 6, FLAGS_AVX512, False),    # Intel: the AVX-512 sort is numpy's fastest
    ("HygonGenuine", 24, FLAGS_AVX2, False),
])
def test_only_zen4_is_recognised(vendor, family, flags, zen4) -> None:
    text = cpuinfo(vendor, family, flags)
    assert cpu.is_zen4(text) is zen4
    assert cpu.numpy_setting({}, text) == (cpu.AVX512_FEATURES if zen4 else None)


def test_the_first_processor_block_decides() -> None:
    text = cpuinfo("AuthenticAMD", 25, FLAGS_AVX512, 1) + "\n\n" + cpuinfo("GenuineIntel", 6, FLAGS_AVX2, 1)
    assert cpu.first_cpu(text)["vendor_id"] == "AuthenticAMD"
    assert cpu.is_zen4(text)
    assert not cpu.is_zen4("")


def test_the_users_choice_stands() -> None:
    zen4 = cpuinfo("AuthenticAMD", 25, FLAGS_AVX512)
    assert cpu.numpy_setting({cpu.NUMPY_VARIABLE: ""}, zen4) is None  # set (even empty): theirs
    assert cpu.numpy_setting({cpu.NUMPY_VARIABLE: "AVX512_SPR"}, zen4) is None
    assert cpu.numpy_setting({cpu.OPT_OUT: "keep"}, zen4) is None
    assert cpu.numpy_setting({cpu.OPT_OUT: "KEEP"}, zen4) is None
    assert cpu.numpy_setting({cpu.OPT_OUT: "no"}, zen4) == cpu.AVX512_FEATURES


def test_a_fresh_interpreter_sets_it_before_numpy_and_numpy_accepts_it(tmp_path) -> None:
    """In a new process (numpy not yet imported) the variable is set from a Zen 4 cpuinfo, numpy imports and
    sorts with it (it ignores the names of other numpy versions), and once numpy is loaded nothing changes."""
    fake = tmp_path / "cpuinfo"
    fake.write_text(cpuinfo("AuthenticAMD", 25, FLAGS_AVX512))
    script = (
        "import json, os, sys\n"
        "from facebench.cpu import avoid_slow_avx512_sort\n"
        "assert 'numpy' not in sys.modules\n"
        f"first = avoid_slow_avx512_sort(os.environ, {str(fake)!r})\n"
        "import numpy as np\n"
        "values = np.sort(np.array([3.0, -1.0, 2.5, 0.0])).tolist()\n"
        "os.environ.pop('NPY_DISABLE_CPU_FEATURES', None)\n"
        f"second = avoid_slow_avx512_sort(os.environ, {str(fake)!r})\n"
        "print(json.dumps([first, second, values]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in (cpu.NUMPY_VARIABLE, cpu.OPT_OUT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [True, False, [-1.0, 0.0, 2.5, 3.0]]
    assert done.stderr == ""  # no warning about unknown feature names
    missing = subprocess.run([sys.executable, "-c", script.replace(str(fake), str(tmp_path / "absent"))],
                             env=env, capture_output=True, text=True, check=True)
    assert json.loads(missing.stdout)[0] is False


def test_the_cli_entry_applies_it_before_numpy_is_imported(tmp_path) -> None:
    """``facebench`` (the console script's :func:`facebench.cli.entry`) imports nothing numeric before it
    applies the rule: on a Zen 4 cpuinfo the variable is set for the command (and any child it starts)."""
    fake = tmp_path / "cpuinfo"
    fake.write_text(cpuinfo("AuthenticAMD", 25, FLAGS_AVX512))
    script = (
        "import os, sys\n"
        "import facebench.cpu, facebench.cli\n"
        f"facebench.cpu.CPUINFO = {str(fake)!r}\n"
        "assert 'numpy' not in sys.modules\n"
        "sys.argv = ['facebench', 'benchmarks']\n"
        "try:\n"
        "    facebench.cli.entry()\n"
        "except SystemExit as done:\n"
        "    print('exit', done.code, os.environ.get('NPY_DISABLE_CPU_FEATURES'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in (cpu.NUMPY_VARIABLE, cpu.OPT_OUT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == f"exit 0 {cpu.AVX512_FEATURES}"
