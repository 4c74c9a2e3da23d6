"""The embedding store: extracted features on disk, sharded, resumable, with a per-sample manifest.

Layout (format ``facebench.extraction.store/1``, documented in docs/store.md so that any engine can write one)::

    STORE/store.json                  {"format", "facebench_version", "model_sha256", "input_contract",
                                       "parts": {PART: {"samples": N, "dim": D, "shard_rows": S,
                                                        "shards": K}}}
    STORE/PART/shard-00000.npy        float32 (rows, D): samples [0, S) of the part, in part order
    STORE/PART/shard-00000.tsv        one line per row: sample_id <TAB> content_key
    STORE/PART/shard-00001.npy ...

A part is one image list as facebench evaluates it (a benchmark's images, ``tinyface_probe`` ...); its
samples are split into shards of ``shard_rows`` consecutive samples, so a sample's shard and row depend
only on its position, never on how it was batched: exactly one row per sample. ``sample_id`` is the
image's path (or ``item <i>`` for a pack's blob); ``content_key`` the hex sha256 of the image's encoded
bytes (:meth:`facebench.extraction.images.ImageList.content_keys`, the digest the feature cache's ``--verify-cache``
compares, :func:`facebench.extraction.images.content_digest`; a full content hash, not the cache's size + mtime
identity, because a store travels between machines and engines, docs/store.md). A shard counts only when
both files are there (each written atomically, the manifest first) and the manifest lists the expected
samples with the expected keys: a killed writer resumes by writing the missing shards. ``store.json``
fixes the model and the input contract: a store of another model or contract is refused, never mixed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from facebench import __version__
from facebench.errors import FacebenchError
from facebench.atomic import save_npy, write_json, write_text

FORMAT = "facebench.extraction.store/1"
DEFAULT_SHARD_ROWS = 4096


def is_store(path: Path) -> bool:
    """Whether ``path`` is a store directory (holds ``store.json``)."""
    return (Path(path) / "store.json").is_file()


def _read_index(root: Path) -> dict[str, Any]:
    try:
        index = json.loads((root / "store.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise FacebenchError(f"{root / 'store.json'}: unreadable store index ({exc})") from None
    if index.get("format") != FORMAT:
        raise FacebenchError(f"{root / 'store.json'}: format {index.get('format')!r}, expected {FORMAT!r}")
    return index


def open_store(root: str | Path, model_sha256: str | None, input_contract: dict[str, Any]) -> dict[str, Any]:
    """Create ``root``'s index, or check that an existing one holds the same model and contract."""
    root = Path(root)
    if is_store(root):
        index = _read_index(root)
        if index["model_sha256"] != model_sha256 or index["input_contract"] != input_contract:
            raise FacebenchError(
                f"{root}: a store of another model or input contract (model {index['model_sha256']}, contract "
                f"{index['input_contract']}); write to a new store"
            )
        return index
    index = {"format": FORMAT, "facebench_version": __version__, "model_sha256": model_sha256,
             "input_contract": input_contract, "parts": {}}
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / "store.json", index)
    return index


def _shard_name(k: int) -> str:
    return f"shard-{k:05d}"


def _manifest_text(ids: Sequence[str], keys: Sequence[str]) -> str:
    for sample in ids:
        if "\t" in sample or "\n" in sample:
            raise FacebenchError(f"sample id {sample!r}: tabs and newlines cannot be stored in a manifest")
    return "".join(f"{i}\t{k}\n" for i, k in zip(ids, keys))


def shard_ranges(n: int, shard_rows: int) -> list[tuple[int, int, int]]:
    """``(k, start, stop)`` of each shard of a part of ``n`` samples: shard k holds ``[k * S, (k + 1) * S)``."""
    if shard_rows < 1:
        raise FacebenchError(f"shard rows must be >= 1, got {shard_rows}")
    return [(k, start, min(start + shard_rows, n)) for k, start in enumerate(range(0, n, shard_rows))]


def shard_done(root: str | Path, part: str, k: int, sample_ids: Sequence[str], keys: Sequence[str]) -> int | None:
    """The feature dimension of shard ``k`` of ``part`` when it is complete (both files there, the manifest
    lists exactly ``sample_ids`` with ``keys``, the ``.npy`` has as many rows), else ``None``. ``sample_ids``
    and ``keys`` are the shard's own samples."""
    folder = Path(root) / part
    tsv, npy = folder / f"{_shard_name(k)}.tsv", folder / f"{_shard_name(k)}.npy"
    if not (tsv.is_file() and npy.is_file()) or tsv.read_text(encoding="utf-8") != _manifest_text(sample_ids, keys):
        return None
    rows = np.load(npy, mmap_mode="r")
    return int(rows.shape[1]) if rows.ndim == 2 and rows.shape[0] == len(sample_ids) else None


def write_shard(
    root: str | Path, part: str, k: int, sample_ids: Sequence[str], keys: Sequence[str], feats: np.ndarray
) -> int:
    """Write shard ``k`` of ``part`` (its samples' ids, keys and float32 feature rows), each file atomically,
    the manifest first; returns the feature dimension."""
    feats = np.ascontiguousarray(feats, dtype=np.float32)
    if feats.ndim != 2 or feats.shape[0] != len(sample_ids):
        raise FacebenchError(f"{part}: shard {k}: {feats.shape} features for {len(sample_ids)} samples")
    folder = Path(root) / part
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / f"{_shard_name(k)}.tsv", _manifest_text(sample_ids, keys))
    save_npy(folder / f"{_shard_name(k)}.npy", feats)
    return int(feats.shape[1])


def finish_part(root: str | Path, part: str, n: int, dim: int | None, shard_rows: int) -> None:
    """Record a part whose shards are all written in ``store.json`` (the last write of an extraction)."""
    root = Path(root)
    index = _read_index(root)
    index["parts"][part] = {"samples": n, "dim": dim, "shard_rows": shard_rows, "shards": -(-n // shard_rows)}
    write_json(root / "store.json", index)


def write_part(
    root: str | Path,
    part: str,
    sample_ids: Sequence[str],
    keys: Sequence[str],
    compute: Callable[[int, int], np.ndarray],
    shard_rows: int = DEFAULT_SHARD_ROWS,
) -> int:
    """Write the shards of ``part`` that are missing or stale, in this process; ``compute(start, stop)``
    returns the float32 features of samples ``[start, stop)``. Returns the number of shards written (0: all
    were there)."""
    _read_index(Path(root))
    written, dim = 0, None
    for k, start, stop in shard_ranges(len(sample_ids), shard_rows):
        ids, ks = sample_ids[start:stop], keys[start:stop]
        done = shard_done(root, part, k, ids, ks)
        if done is None:
            feats = np.asarray(compute(start, stop))
            if feats.shape[0] != stop - start:
                raise FacebenchError(f"{part}: {feats.shape[0]} feature rows for samples {start}..{stop - 1}")
            done = write_shard(root, part, k, ids, ks, feats)
            written += 1
        dim = done
    finish_part(root, part, len(sample_ids), dim, shard_rows)
    return written


def read_part(root: str | Path, part: str) -> tuple[np.ndarray, list[str], list[str]]:
    """``(features (N, D) float32, sample ids, content keys)`` of a part; every shard checked complete."""
    root = Path(root)
    index = _read_index(root)
    if part not in index["parts"]:
        raise FacebenchError(f"{root}: the store has no part {part!r} (parts: {', '.join(index['parts']) or 'none'})")
    meta = index["parts"][part]
    feats, ids, keys = [], [], []
    for k in range(meta["shards"]):
        tsv, npy = root / part / f"{_shard_name(k)}.tsv", root / part / f"{_shard_name(k)}.npy"
        if not (tsv.is_file() and npy.is_file()):
            raise FacebenchError(f"{root / part}: shard {k} is missing ({tsv.name}, {npy.name}); resume the extraction")
        rows = [line.split("\t") for line in tsv.read_text(encoding="utf-8").splitlines()]
        block = np.load(npy, allow_pickle=False)
        if block.shape[0] != len(rows) or any(len(r) != 2 for r in rows):
            raise FacebenchError(f"{npy}: {block.shape[0]} rows but its manifest {tsv.name} lists {len(rows)} samples")
        feats.append(block)
        ids += [r[0] for r in rows]
        keys += [r[1] for r in rows]
    out = np.concatenate(feats) if feats else np.zeros((0, meta["dim"] or 0), np.float32)
    if out.shape[0] != meta["samples"]:
        raise FacebenchError(f"{root / part}: {out.shape[0]} rows, store.json says {meta['samples']}")
    return out, ids, keys
