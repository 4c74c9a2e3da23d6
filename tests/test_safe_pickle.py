"""The restricted unpickler: packs load, code payloads are refused before they run."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import subprocess

import numpy as np
import pytest

from facebench.io import safe_pickle
from facebench.errors import FacebenchError
from facebench.io.binpack import read_bin


class _Call:
    """Pickles as a call of ``func(*args)``: what a malicious pack does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker: str):
    """Each payload creates ``marker`` when it runs: (names the refused global may carry, object). Protocols
    0-2 write Python 2 names (``__builtin__``; ``subprocess.Popen`` as ``commands.Popen``)."""
    return [
        ({"posix.system"}, _Call(os.system, f"touch {marker}")),
        ({"builtins.eval", "__builtin__.eval"}, _Call(builtins.eval, f"open({marker!r}, 'w').close()")),
        ({"builtins.exec", "__builtin__.exec"}, _Call(builtins.exec, f"open({marker!r}, 'w').close()")),
        ({"subprocess.Popen", "commands.Popen"}, _Call(subprocess.Popen, ["touch", marker])),
        ({"io.open"}, _Call(builtins.open, marker, "w")),
    ]


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("case", range(5))
def test_code_payload_is_refused_and_never_runs(tmp_path, protocol, case):
    marker = tmp_path / "payload_ran"
    names, payload = _payloads(str(marker))[case]
    pack = tmp_path / "evil.bin"
    # the payload hides behind valid items, as a doctored pack would
    pack.write_bytes(pickle.dumps(([b"\xff\xd8jpeg", payload], [True]), protocol=protocol))
    with pytest.raises(FacebenchError) as err:
        read_bin(pack)
    message = str(err.value)
    assert any(f"refused to unpickle the global '{name}'" in message for name in names), message
    assert str(pack) in message
    assert not marker.exists()


def test_the_payloads_are_real(tmp_path):
    # control: a plain pickle.load runs the payload, so the refusal above is what keeps it from running
    marker = tmp_path / "payload_ran"
    _, payload = _payloads(str(marker))[1]
    pickle.loads(pickle.dumps(payload))
    assert marker.exists()


def test_python2_module_names_are_refused(tmp_path):
    marker = tmp_path / "ran"
    # protocol-0 text written by hand with Python 2 names: __builtin__.eval and os.system
    for module, name in (("__builtin__", "eval"), ("os", "system"), ("copy_reg", "_reconstructor")):
        data = f"c{module}\n{name}\n(S'open({str(marker)!r}, \"w\")'\ntR.".encode()
        path = tmp_path / f"{name}.bin"
        path.write_bytes(data)
        with pytest.raises(FacebenchError, match=rf"'{module}\.{name}'"):
            read_bin(path)
    assert not marker.exists()


def test_restricted_builtins_refuse_dangerous_arguments():
    # _codecs.encode is admitted only for latin1 (how Python 3 protocol 2 writes bytes)
    rot13 = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R."
    with pytest.raises(FacebenchError, match="only latin1"):
        safe_pickle.load_stream(io.BytesIO(rot13), "rot13.bin")
    # bytes(huge int) would allocate; only bytes-like arguments are admitted
    huge = b"\x80\x02c__builtin__\nbytes\nJ\x00\x00\x00\x7f\x85R."
    with pytest.raises(FacebenchError, match="unsupported arguments"):
        safe_pickle.load_stream(io.BytesIO(huge), "huge.bin")


@pytest.mark.parametrize("protocol", range(0, 6))
def test_pack_types_round_trip_every_protocol(protocol):
    obj = (
        [b"abc", np.frombuffer(b"xyz\x00", np.uint8), bytearray(b"q"), b""],
        [True, np.bool_(False)],
        np.array([True, False]),
    )
    got = safe_pickle.load_stream(io.BytesIO(pickle.dumps(obj, protocol=protocol)), "x")
    assert got[0][0] == b"abc" and bytes(got[0][2]) == b"q" and got[0][3] == b""
    np.testing.assert_array_equal(got[0][1], [120, 121, 122, 0])
    assert got[0][1].dtype == np.uint8
    assert got[1] == [True, False] and isinstance(got[1][1], np.bool_)
    np.testing.assert_array_equal(got[2], [True, False])


def test_numpy1_module_names_are_admitted():
    # numpy 1.x writes numpy.core.multiarray._reconstruct; numpy 2 writes numpy._core...: both must load
    data = pickle.dumps(np.arange(5, dtype=np.uint8), protocol=2)
    assert b"numpy._core.multiarray" in data or b"numpy.core.multiarray" in data
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    np.testing.assert_array_equal(safe_pickle.load_stream(io.BytesIO(old), "x"), np.arange(5))


def test_allow_list_is_exactly_the_pack_types():
    modules = {g.rsplit(".", 1)[0] for g in safe_pickle.ALLOWED_GLOBALS}
    assert modules == {
        "numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric", "numpy._core.numeric",
        "builtins", "__builtin__", "_codecs",
    }
    assert "numpy.load" not in safe_pickle.ALLOWED_GLOBALS and "builtins.getattr" not in safe_pickle.ALLOWED_GLOBALS


def test_truncated_and_garbage_files(tmp_path):
    data = pickle.dumps(([b"a" * 100, b"b" * 100], [True]), protocol=4)
    for cut in (1, len(data) // 2, len(data) - 1):
        path = tmp_path / f"cut{cut}.bin"
        path.write_bytes(data[:cut])
        with pytest.raises(FacebenchError, match=r"cut\d+\.bin: .*(truncated|corrupt)"):
            safe_pickle.load(path)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00not a pickle at all")
    with pytest.raises(FacebenchError, match="garbage.bin"):
        safe_pickle.load(garbage)
    with pytest.raises(FacebenchError, match="file not found"):
        safe_pickle.load(tmp_path / "absent.bin")
