"""The Python API: load a checkpoint, embed images, and evaluate embeddings already in memory (or a
checkpoint) with the evaluators `facebench run` uses; the results are the documents `results.json` holds.
Reference and examples: docs/api.md."""

from __future__ import annotations

import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from facebench.benchmarks import user_protocols
from facebench.extraction.extractor import FeatureExtractor, ModelSettings
from facebench.errors import FacebenchError
from facebench.registry import did_you_mean
from facebench.results import RunResults
from facebench.evaluate.common import RunSettings
from facebench.evaluate.pairs import verification_metrics
from facebench.extraction.extract import combine_flip, embed_chips
from facebench.atomic import save_npy, write_bytes
from facebench.extraction.images import ImageList

from facebench.cli.demo import DEMO_CHECKPOINT  # the shipped demo model (MobileFaceNet-small, 128-d, ONNX)


def load_model(
    checkpoint: str | Path, *, arch: str | None = None, profile: str | None = None, flip: str | None = None,
    device: str = "auto", batch_size: int = 32, cache: bool = False,
) -> FeatureExtractor:
    """A checkpoint (ONNX, TorchScript, state_dict with ``arch``, dlib ``.dat``) with its resolved input
    contract, as `facebench run` loads it (``cache``: reuse the on-disk feature cache)."""
    return FeatureExtractor.load(ModelSettings(
        checkpoint=Path(checkpoint), arch=arch, profile=profile, flip=flip, device=device, batch_size=batch_size,
        workers=0, cache=cache, progress=False,
    ))


def embed_images(
    model: FeatureExtractor, images: Sequence[str | Path] | np.ndarray, landmarks: np.ndarray | None = None
) -> np.ndarray:
    """Flip-combined, unnormalised float32 features ``(N, D)`` under the model's profile, of image files
    (112x112 ArcFace crops, or raw images with ``landmarks`` ``(N, 5, 2)``), aligned as `facebench run`
    aligns them, or of uint8 RGB chips ``(N, S, S, 3)`` already cut for the profile (S = its chip size)."""
    profile = model.profile
    if isinstance(images, np.ndarray):
        if images.ndim != 4 or images.shape[1:] != (profile.size, profile.size, 3) or images.dtype != np.uint8:
            raise FacebenchError(
                f"images: expected uint8 RGB chips (N, {profile.size}, {profile.size}, 3) for profile "
                f"{profile.name}, got {images.dtype} {images.shape}"
            )
        return combine_flip(embed_chips(model.encoder, images, profile, model.settings.batch_size), profile.flip)
    listed = ImageList("image files", paths=[str(p) for p in images], landmarks=landmarks)
    return model.embed(listed, "api")


def evaluate_pairs(
    features: np.ndarray, issame: np.ndarray, *, kfold_rule: str = "insightface", tar_rule: str = "nearest"
) -> dict[str, Any]:
    """The metrics of a pair-verification benchmark, nested as the evaluator returns them (a run maps them to
    the metric paths of ``benchmarks.<name>.metrics``, :func:`facebench.results.flat_metrics`), from
    ``2N`` flip-combined features in pair order and ``N`` same/different labels in 10 contiguous folds."""
    metrics, _ = verification_metrics(np.asarray(features, dtype=np.float32), np.asarray(issame, dtype=bool),
                                      kfold_rule, tar_rule)
    return metrics


def evaluate_benchmark(
    benchmark: str,
    features: np.ndarray | Mapping[str, np.ndarray | Sequence[str]] | None = None,
    *,
    checkpoint: str | Path | None = None,
    data_root: str | Path = ".",
    out: str | Path | None = None,
    protocols: Sequence[str | Path] = (),
    **settings: Any,
) -> RunResults:
    """Run ``benchmark`` (a name, a group such as ``all-demo``, or ``folder:PATH``) exactly as
    ``facebench run`` does and return the results document (:class:`facebench.results.RunResults`, what
    results.json holds).

    ``features``: embeddings in memory, one row per benchmark image in benchmark order; one array for a
    benchmark with one image list, or ``{label: array}`` as ``--features DIR`` names its files, a key
    ending in ``.txt`` holding text lines (MegaFace: ``facescrub``, ``megaface`` and ``megaface.txt``, the
    devkit path of each distractor row). Or ``checkpoint``: a model file. ``out``: also write the report there
    (default: nowhere). ``protocols``: user spec files (``--protocols``). ``settings``: any other field of
    :class:`facebench.evaluate.common.RunSettings` (``kfold_rule``, ``tar_rule``, ``file_overrides``,
    ``options``, ...). A benchmark that fails raises :class:`FacebenchError` with its message.
    """
    from facebench.pipeline import run

    known = [f.name for f in fields(RunSettings)]
    for name in settings:
        if name not in known:
            raise FacebenchError(f"unknown setting {name!r}{did_you_mean(name, known)} (known: {', '.join(known)}; "
                                 "see facebench.evaluate.common.RunSettings)")
    if (features is None) == (checkpoint is None):
        raise FacebenchError("give features (embeddings in memory) or a checkpoint, not both")
    with tempfile.TemporaryDirectory(prefix="facebench-api-") as tmp:
        feature_path = None
        if isinstance(features, Mapping):
            feature_path = Path(tmp) / "features"
            for label, value in features.items():
                if label.endswith(".txt"):
                    write_bytes(feature_path / label, "".join(f"{line}\n" for line in value).encode())
                else:
                    save_npy(feature_path / f"{label}.npy", np.asarray(value, dtype=np.float32))
        elif features is not None:
            feature_path = Path(tmp) / "features.npy"
            save_npy(feature_path, np.asarray(features, dtype=np.float32))
        run_settings = RunSettings(
            benchmarks=benchmark, data_root=Path(data_root), out=Path(out) if out else Path(tmp) / "out",
            checkpoint=Path(checkpoint) if checkpoint else None, features=feature_path,
            **{"progress": False, "workers": 0, **settings},
        )
        with user_protocols(protocols):
            doc, _ = run(run_settings)
    if doc.failed:
        raise FacebenchError("; ".join(f"{name}: {message}" for name, message in doc.failed.items()))
    return doc
