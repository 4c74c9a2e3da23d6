"""The filtered v1c-R training pack: an insightface RecordIO pack of v1c with removed identities dropped and
every record relabelled.

Rule: a record's class (its scalar label, or the first of its labels) is a label of the listing; the
records of kept identities are written in new-label order (pack order within a label) with the new label,
in the insightface layout (header record, images 1..N, one identity record per class) by
:func:`facebench.io.recordio.write_record_pack`; ``property`` holds the kept identity count and the
source pack's image size. A record whose class is not a label of the listing is an error (the pack and
the listing are not the same set), found before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from facebench.errors import FacebenchError
from facebench.io.recordio import RecordPack, write_record_pack
from facebench.overlap.listing import Listing


@dataclass
class FilteredPack:
    """A source pack with each image's new label (-1 = dropped) worked out, ready to write."""

    pack: RecordPack
    new_labels: np.ndarray
    order: np.ndarray
    num_classes: int

    @classmethod
    def open(cls, rec_dir: str | Path, listing: Listing, class_new_labels: np.ndarray) -> "FilteredPack":
        """Open the pack and map every record's class through the listing's labels; errors name the record."""
        if listing.labels is None:
            raise FacebenchError(f"--rec {rec_dir}: the listing has no labels to match the pack's classes")
        pack = RecordPack(rec_dir)
        old = pack.labels()
        labels = np.asarray(listing.labels, dtype=np.int64)
        top = int(max(labels.max(initial=0), old.max(initial=0))) + 1
        lut = np.full(top, -2, dtype=np.int64)
        lut[labels] = np.asarray(class_new_labels, dtype=np.int64)
        new = lut[old]
        unknown = np.flatnonzero(new == -2)
        if unknown.size:
            i = int(unknown[0])
            raise FacebenchError(
                f"{pack.rec_path} image {i} (key {int(pack.image_keys[i])}): class {int(old[i])} is not a label "
                f"of {listing.source} ({unknown.size:,} such images); the pack and the listing must be the same "
                "v1c set"
            )
        kept = np.flatnonzero(new >= 0)
        order = kept[np.argsort(new[kept], kind="stable")]
        num_classes = int((np.asarray(class_new_labels) >= 0).sum())
        return cls(pack, new, order, num_classes)

    def _items(self) -> Iterator[tuple[int, bytes]]:
        for i in self.order.tolist():
            _cls, payload = self.pack.image(i)
            yield int(self.new_labels[i]), payload

    def write(self, out_dir: Path, source_rows: int | None = None) -> dict[str, Any]:
        """Write ``train.rec``/``train.idx``/``property`` into ``out_dir``; return what was written."""
        size = self.pack.image_size or (112, 112)
        n = write_record_pack(out_dir, self._items(), image_size=size, num_classes=self.num_classes)
        return {
            "source": str(self.pack.rec_path),
            "images_in": len(self.pack),
            "images_kept": n,
            "classes": self.num_classes,
            "image_size": list(size),
            "listing_rows": source_rows,
        }
