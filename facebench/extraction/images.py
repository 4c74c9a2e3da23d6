"""Images: decode, 5-point alignment onto a chip template, and the list of a benchmark's images.

Alignment rule (PROTOCOLS 1.4): the similarity transform that maps the 5 landmarks (left eye, right eye,
nose, left mouth corner, right mouth corner, as seen in the image) onto the chip template in the least
squares sense (Umeyama, no reflection), then a bilinear ``cv2.warpAffine`` with border value 0.

Large faces: when the similarity shrinks the image by more than 2x, the image is first reduced through a
Gaussian pyramid (``cv2.pyrDown``: 5-tap ``[1 4 6 4 1]/16`` filter, then every second pixel, level pixel ``j``
centred on pixel ``2j`` of the level below), as few levels as leave a shrink of at most 2x for the bilinear
warp; the matrix is rescaled to the level. This is dlib's ``extract_image_chip`` rule (its pyramid places the
level grid a fraction of a pixel differently), so a 1080p photo loses no detail to aliasing.

Orientation: pixels are decoded upright, with the EXIF orientation applied (what OpenCV, Pillow's
``exif_transpose`` and photo viewers show); landmark coordinates are in that upright frame. Points measured
on the stored pixels (by a tool that ignores EXIF) are mapped into it by :func:`stored_to_upright`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from facebench.errors import FacebenchError
from facebench.io.landmarks import check_landmarks

ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
"""The ArcFace 112x112 5-point template (insightface)."""

ARCFACE_SIZE = 112

ALIGNMENT_RULE = "umeyama similarity; pyramid while shrink > 2x; bilinear, border 0"
"""The warp rule of :func:`warp_to_chip`, part of the feature-cache key (a new rule must not reuse old chips)."""


@functools.cache
def opencv() -> Any:
    """OpenCV, imported on first use (a run from precomputed features never decodes an image), with its
    own thread pool off: decoding runs in decode threads, one image at a time each."""
    import cv2

    cv2.setNumThreads(1)
    return cv2


@dataclass(frozen=True)
class ChipGeometry:
    """Where the 5 ArcFace-convention landmarks land in a chip of ``size`` x ``size`` pixels.

    ``fit`` lists the landmark indices the similarity is fitted on (all five for ArcFace chips; the two eye
    centres for chips whose own template differs below the eyes, such as dlib's).
    """

    name: str
    size: int
    template: np.ndarray
    fit: tuple[int, ...] = (0, 1, 2, 3, 4)


def arcface_chip(size: int = ARCFACE_SIZE) -> ChipGeometry:
    """The ArcFace template scaled to a ``size`` x ``size`` chip."""
    return ChipGeometry("arcface", size, ARCFACE_TEMPLATE * (size / ARCFACE_SIZE))


def umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix of the least-squares similarity (rotation, uniform scale, translation) mapping src onto dst.

    Umeyama (1991), without reflection; the same estimate as ``skimage.transform.SimilarityTransform``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f"need matching (K>=2, 2) point sets, got {src.shape} and {dst.shape}")
    n = src.shape[0]
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / n
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1.0
    u, s, vt = np.linalg.svd(cov)
    rank = np.linalg.matrix_rank(cov)
    if rank == 0:
        raise ValueError("degenerate landmarks: all points coincide")
    if rank == 1:
        if np.linalg.det(u) * np.linalg.det(vt) > 0:
            rot = u @ vt
        else:
            dd = d[1]
            d[1] = -1.0
            rot = u @ np.diag(d) @ vt
            d[1] = dd
    else:
        rot = u @ np.diag(d) @ vt
    var_src = src_c.var(axis=0).sum()
    scale = (s @ d) / var_src
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rot
    matrix[:, 2] = dst_mean - scale * rot @ src_mean
    return matrix


DEFAULT_MAX_PIXELS = 64 * 1024 * 1024
"""The largest image decoded by default: 64 Mpx (8192x8192, 192 MiB as RGB). Face benchmarks' images are
far smaller; a larger one is refused before decoding (a 2.6 MB PNG can declare 30000x30000 = 2.5 GiB)."""
MAX_PIXELS_ENV = "FACEBENCH_MAX_IMAGE_PIXELS"
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})


def max_image_pixels() -> int:
    """The pixel limit: ``$FACEBENCH_MAX_IMAGE_PIXELS`` when set (a positive integer), else
    ``DEFAULT_MAX_PIXELS``."""
    raw = os.environ.get(MAX_PIXELS_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise FacebenchError(f"${MAX_PIXELS_ENV}={raw!r}: expected a positive number of pixels")
    return value


def _jpeg_size(data: memoryview) -> tuple[int, int] | None:
    """(width, height) from a JPEG's first frame header (SOFn), walking the marker segments."""
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:  # extraneous bytes before a marker: skipped, as libjpeg does
            pos += 1
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if marker == 0xDA:  # scan data before any frame header
            return None
        length = (data[pos + 2] << 8) | data[pos + 3]
        if marker in _JPEG_SOF and pos + 9 <= n:
            height = (data[pos + 5] << 8) | data[pos + 6]
            width = (data[pos + 7] << 8) | data[pos + 8]
            return (width, height) if height else None
        pos += 2 + length
    return None


def image_size(data: bytes | bytearray | memoryview | np.ndarray) -> tuple[int, int] | None:
    """(width, height) an encoded image declares in its header, read without decoding it.

    PNG (IHDR) and JPEG (SOFn) headers are parsed here; other formats (and JPEGs whose frame header this
    parser does not find) through Pillow's header reader.
    ``None`` when no size can be read (not an image, or a truncated header).
    """
    view = memoryview(data).cast("B") if not isinstance(data, np.ndarray) else memoryview(np.ascontiguousarray(data))
    head = bytes(view[:32])
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR" and len(head) >= 24:
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head.startswith(b"\xff\xd8"):
        size = _jpeg_size(view)
        if size is not None:
            return size
    return _pillow_size(view)


def _pillow_size(view: memoryview) -> tuple[int, int] | None:
    """(width, height) read by the first Pillow format plugin that accepts the header (what ``Image.open``
    does, minus its own pixel check, so that the limit applied is facebench's)."""
    from PIL import Image

    Image.init()
    prefix = bytes(view[:16])
    for format_id in Image.ID:
        factory, accept = Image.OPEN[format_id]
        if accept is not None and not accept(prefix):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return tuple(factory(io.BytesIO(view), "").size)  # type: ignore[return-value]
        except Exception:  # noqa: BLE001 - this plugin cannot read it; try the next
            continue
    return None


def check_image_size(data: bytes | bytearray | memoryview | np.ndarray, origin: str) -> tuple[int, int]:
    """The header size of an encoded image; an unreadable header, or more pixels than
    :func:`max_image_pixels`, is an error naming ``origin`` (nothing is decoded)."""
    size = image_size(data)
    if size is None:
        raise FacebenchError(f"{origin}: cannot decode the image (corrupt or not an image file: no readable size)")
    width, height = size
    limit = max_image_pixels()
    if width * height > limit:
        raise FacebenchError(
            f"{origin}: the image declares {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{limit:,} (decoding it would take {width * height * 3 / 2**30:.1f} GiB); refused without decoding. "
            f"Raise the limit with {MAX_PIXELS_ENV}=N if the image is genuine"
        )
    return size


def decode_image(data: bytes | np.ndarray, origin: str) -> np.ndarray:
    """Decode an encoded image (JPEG/PNG/...) to uint8 RGB ``(H, W, 3)``; an undecodable one, or one whose
    header declares more than :func:`max_image_pixels` pixels (checked before decoding), is an error."""
    buffer = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if buffer.dtype != np.uint8 or buffer.ndim != 1 or buffer.size == 0:
        raise FacebenchError(f"{origin}: not an encoded image (expected bytes or a 1-D uint8 array)")
    check_image_size(buffer, origin)
    cv2 = opencv()
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if image is None:
        raise FacebenchError(f"{origin}: cannot decode the image (corrupt or not an image file)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_encoded(path: str, origin: str | None = None) -> bytes:
    """The bytes of an image file; a missing or unreadable file is an error naming it."""
    origin = origin or path
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise FacebenchError(f"{origin}: image file not found: {path}") from None
    except OSError as exc:
        raise FacebenchError(f"{origin}: cannot read image {path}: {exc}") from None


def read_image(path: str, origin: str | None = None) -> np.ndarray:
    """Read and decode an image file to uint8 RGB; a missing or corrupt file is an error naming it."""
    return decode_image(read_encoded(path, origin), origin or path)


def pyramid_levels(matrix: np.ndarray) -> int:
    """How many 2x pyramid reductions precede the warp: the fewest ``k >= 0`` with ``shrink / 2**k <= 2``,
    where ``shrink = 1 / sqrt(|det A|)`` of the 2x3 similarity ``matrix = [A | t]``."""
    scale = float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, dtype=np.float64)[:, :2]))))
    if scale <= 0:
        raise ValueError("degenerate alignment matrix (zero scale)")
    shrink, k = 1.0 / scale, 0
    while shrink / 2**k > 2.0:
        k += 1
    return k


def warp_to_chip(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Warp with a 2x3 matrix into a ``size`` x ``size`` chip, border value 0: pyramid reduction first when the
    face shrinks by more than 2x (module rule), then bilinear."""
    cv2 = opencv()
    matrix = np.asarray(matrix, dtype=np.float64)
    levels = pyramid_levels(matrix)
    for _ in range(min(levels, _max_levels(image.shape[:2]))):
        image = cv2.pyrDown(image)
        matrix = matrix * np.array([[2.0, 2.0, 1.0]])
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0.0)


def _max_levels(shape: tuple[int, ...]) -> int:
    """Reductions an image of ``shape`` allows (each level keeps at least 2x2 pixels)."""
    return max(0, int(np.floor(np.log2(max(1, min(shape[0], shape[1]) // 2)))))


EXIF_ORIENTATION_TAG = 0x0112
MIRRORING_ORIENTATIONS = (2, 4, 5, 7)
"""EXIF orientations that mirror the image: the points "as seen in the image" swap left and right."""


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says: stored ``width`` x ``height`` and the EXIF ``orientation`` (1..8)."""

    width: int
    height: int
    orientation: int = 1

    @property
    def upright_size(self) -> tuple[int, int]:
        """(width, height) once the orientation is applied (5..8 swap the sides)."""
        return (self.height, self.width) if self.orientation >= 5 else (self.width, self.height)


def read_header(path: str) -> ImageHeader:
    """Size and EXIF orientation of an image file without decoding its pixels (orientation 1 when absent or
    out of range); an unreadable file is an error naming it."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            value = im.getexif().get(EXIF_ORIENTATION_TAG, 1)
            width, height = im.size
    except (OSError, SyntaxError, ValueError) as exc:
        raise FacebenchError(f"{path}: cannot read the image header: {exc}") from None
    orientation = int(value) if isinstance(value, int) and 1 <= value <= 8 else 1
    return ImageHeader(int(width), int(height), orientation)


def stored_to_upright(points: np.ndarray, orientation: int, width: int, height: int) -> np.ndarray:
    """5 landmarks measured on the stored ``width`` x ``height`` pixels, mapped into the upright frame.

    Pixel centres are integers; for orientation (EXIF values) 1 ``(x, y)``, 2 ``(W-1-x, y)``, 3
    ``(W-1-x, H-1-y)``, 4 ``(x, H-1-y)``, 5 ``(y, x)``, 6 ``(H-1-y, x)``, 7 ``(H-1-y, W-1-x)``, 8
    ``(y, W-1-x)``. The mirroring orientations (2, 4, 5, 7) also swap the left/right eye and mouth corner,
    so that the order stays "as seen in the image".
    """
    p = np.asarray(points, dtype=np.float64)
    x, y = p[..., 0], p[..., 1]
    w, h = width - 1.0, height - 1.0
    mapped = {
        1: (x, y), 2: (w - x, y), 3: (w - x, h - y), 4: (x, h - y),
        5: (y, x), 6: (h - y, x), 7: (h - y, w - x), 8: (y, w - x),
    }  # fmt: skip
    if orientation not in mapped:
        raise ValueError(f"EXIF orientation must be 1..8, got {orientation}")
    out = np.stack(mapped[orientation], axis=-1)
    if orientation in MIRRORING_ORIENTATIONS:
        out = out[..., [1, 0, 2, 4, 3], :]
    return out


def align(image: np.ndarray, landmarks: np.ndarray, chip: ChipGeometry) -> np.ndarray:
    """Align a raw image with its 5 landmarks onto ``chip`` (similarity fitted on ``chip.fit``)."""
    idx = list(chip.fit)
    matrix = umeyama_similarity(np.asarray(landmarks, dtype=np.float64)[idx], chip.template[idx])
    return warp_to_chip(image, matrix, chip.size)


def to_arcface_crop(image: np.ndarray) -> np.ndarray:
    """A pack image as a 112x112 ArcFace crop: used as is when 112x112, else resized on the short side to
    112 (bilinear) and centre-cropped."""
    h, w = image.shape[:2]
    if (h, w) == (ARCFACE_SIZE, ARCFACE_SIZE):
        return image
    scale = ARCFACE_SIZE / min(h, w)
    nh, nw = max(ARCFACE_SIZE, round(h * scale)), max(ARCFACE_SIZE, round(w * scale))
    cv2 = opencv()
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    top, left = (nh - ARCFACE_SIZE) // 2, (nw - ARCFACE_SIZE) // 2
    return np.ascontiguousarray(resized[top : top + ARCFACE_SIZE, left : left + ARCFACE_SIZE])


def crop_to_chip(crop: np.ndarray, chip: ChipGeometry) -> np.ndarray:
    """Map an ArcFace 112x112 crop onto another chip geometry (identity for the 112 ArcFace chip)."""
    if chip.name == "arcface" and chip.size == ARCFACE_SIZE:
        return crop
    return align(crop, ARCFACE_TEMPLATE, chip)


@dataclass
class ImageList:
    """The images of a benchmark in benchmark order: files on disk or encoded blobs from a pack.

    Exactly one of ``paths`` and ``blobs`` is set. ``landmarks`` (``(N, 5, 2)`` float, NaN rows where
    absent) marks raw images to align; images without landmarks must already be ArcFace crops.
    ``scores`` optionally carries a per-image detector score (IJB). ``crops`` says the images are already
    aligned crops (packs): a size other than 112x112 is then resized on the short side; for raw images
    (``crops=False``, the default for files) a non-112x112 image without landmarks is an error.
    ``alignment`` names where detected landmarks came from (detector, landmarker, policy; see
    :mod:`facebench.extraction.enrol`); it is part of the fingerprint, so the feature-cache key covers it.
    """

    origin: str
    paths: Sequence[str] | None = None
    blobs: Sequence[bytes | np.ndarray] | None = None
    landmarks: np.ndarray | None = None
    scores: np.ndarray | None = None
    names: Sequence[str] | None = field(default=None, repr=False)
    crops: bool | None = None
    alignment: str = ""

    def __post_init__(self) -> None:
        if (self.paths is None) == (self.blobs is None):
            raise ValueError("ImageList needs exactly one of paths and blobs")
        if self.landmarks is not None and self.landmarks.shape != (len(self), 5, 2):
            raise ValueError(f"landmarks must be ({len(self)}, 5, 2), got {self.landmarks.shape}")
        if self.crops is None:
            self.crops = self.blobs is not None

    def __len__(self) -> int:
        return len(self.paths if self.paths is not None else self.blobs)  # type: ignore[arg-type]

    def describe(self, i: int) -> str:
        """Human-readable location of image ``i`` for error messages."""
        if self.paths is not None:
            return f"{self.origin}: {self.paths[i]}"
        name = f" ({self.names[i]})" if self.names is not None else ""
        return f"{self.origin} item {i}{name}"

    def subset(self, start: int, stop: int) -> "ImageList":
        """Images ``[start, stop)`` as their own list (same origin and kind)."""
        part = slice(start, stop)
        return ImageList(
            origin=self.origin,
            paths=None if self.paths is None else list(self.paths[part]),
            blobs=None if self.blobs is None else list(self.blobs[part]),
            landmarks=None if self.landmarks is None else self.landmarks[part],
            scores=None if self.scores is None else self.scores[part],
            names=None if self.names is None else list(self.names[part]),
            crops=self.crops,
        )

    def encoded(self, i: int) -> bytes | np.ndarray:
        """The encoded bytes of image ``i`` (read from its file, or the pack's blob)."""
        if self.paths is not None:
            return read_encoded(self.paths[i], self.describe(i))
        return self.blobs[i]  # type: ignore[index]

    def load_chip(self, i: int, chip: ChipGeometry) -> np.ndarray:
        """Decode image ``i`` and return it as a uint8 RGB chip; any failure is an error naming the image."""
        return self.chip_from(i, self.encoded(i), chip)

    def chip_from(self, i: int, data: bytes | np.ndarray, chip: ChipGeometry) -> np.ndarray:
        """Image ``i``, given its encoded bytes ``data``, as a uint8 RGB chip (aligned by its landmarks, or
        mapped from an ArcFace crop); any failure is an error naming the image."""
        try:
            return self._chip_from(i, data, chip)
        except FacebenchError:
            raise
        except Exception as exc:  # a decoder or warp failure (cv2.error, MemoryError...) names its image
            raise FacebenchError(f"{self.describe(i)}: {type(exc).__name__}: {exc}") from exc

    def _chip_from(self, i: int, data: bytes | np.ndarray, chip: ChipGeometry) -> np.ndarray:
        image = decode_image(data, self.describe(i))
        lmk = self.landmarks[i] if self.landmarks is not None else None
        if lmk is not None and not np.isnan(lmk).all():  # an all-NaN row: no landmarks for this image
            check_landmarks(lmk, self.describe(i), image.shape[:2])
            return align(image, lmk, chip)
        if not self.crops and image.shape[:2] != (ARCFACE_SIZE, ARCFACE_SIZE):
            raise FacebenchError(
                f"{self.describe(i)}: a raw {image.shape[1]}x{image.shape[0]} image without landmarks; "
                "give a landmark file (--file NAME.landmarks=FILE, lines 'path x1 y1 ... x5 y5'), let facebench "
                "detect the face (`facebench run` and `facebench align` do so for image files) or use 112x112 "
                "aligned crops"
            )
        return crop_to_chip(to_arcface_crop(image), chip)

    def fingerprint(self) -> str:
        """sha256 identifying this exact list, for cache keys: each file's path, size and modification time
        in nanoseconds (:func:`file_identity`), or each blob's bytes; and the landmarks."""
        digest = hashlib.sha256()
        if self.paths is not None:
            for p in self.paths:
                digest.update(f"{p}\0{file_identity(p)}\0".encode("utf-8"))
        else:
            for b in self.blobs:  # type: ignore[union-attr]
                digest.update(content_digest(b))
        if self.landmarks is not None:
            digest.update(np.ascontiguousarray(self.landmarks, dtype=np.float64).tobytes())
        if self.alignment:
            digest.update(b"alignment\0" + self.alignment.encode("utf-8"))
        return digest.hexdigest()

    def content_keys(self) -> list[str]:
        """Each image's content key, the embedding store's manifest key (docs/store.md): the lowercase hex
        of :func:`content_digest` of its encoded bytes (every file read and hashed)."""
        return [content_digest(self.encoded(i)).hex() for i in range(len(self))]

    def contents_digest(self, indices: Sequence[int]) -> str:
        """sha256 over the content digests of images ``indices`` (every file read and hashed)."""
        digest = hashlib.sha256()
        for i in indices:
            digest.update(content_digest(self.encoded(int(i))))
        return digest.hexdigest()


def content_digest(data: bytes | bytearray | memoryview | np.ndarray) -> bytes:
    """sha256 (32 raw bytes) of an encoded image."""
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data).data
    return hashlib.sha256(data).digest()


def file_identity(path: str) -> str:
    """``size:mtime_ns`` of a file, the rule git and make use to decide a file is unchanged without reading it
    (``missing`` when it cannot be stat'ed: extraction then reports it)."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"
