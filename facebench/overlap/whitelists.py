"""Freebase MIDs and the published MS-Celeb-1M-v1c-R whitelists (PROTOCOLS 5).

The lists themselves cannot be shipped (MS-Celeb-1M was withdrawn by its publisher), so a known list is
identified by its checksum and resolved to a file the user has: ``--whitelist deepglint`` looks for the
list's upstream file name in the folders the caller searches (``--whitelist-dir``, then
``$FACEBENCH_WHITELIST_DIR``), in each folder itself and one level below it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from facebench.errors import FacebenchError
from facebench.registry import Registry

MID_PATTERN = re.compile(r"m\.0[0-9a-z_]+")
"""A Freebase machine id as MS-Celeb-1M names its identities (``m.0dc7zz``): ``m.0`` then [0-9a-z_]."""

V1C_IDENTITIES = 86_876
"""Identities of MS-Celeb-1M-v1c (DeepGlint's cleaned "msra" set), the listing v1c-R is cut from."""


def is_mid(text: str) -> bool:
    """True when ``text`` is a Freebase MID (``m.0`` followed by lowercase letters, digits or ``_``)."""
    return MID_PATTERN.fullmatch(text) is not None


@dataclass(frozen=True)
class KnownWhitelist:
    """A published list of kept MIDs, identified by its checksum."""

    name: str
    aliases: tuple[str, ...]
    file_name: str
    count: int
    sha256: str
    md5: str
    source: str

    @property
    def removed(self) -> int:
        """Identities of the 86,876-identity v1c listing this list drops."""
        return V1C_IDENTITIES - self.count


WHITELISTS: tuple[KnownWhitelist, ...] = (
    KnownWhitelist(
        name="deepglint",
        aliases=("svx", "sv-x", "deepglint_unoverlap_list"),
        file_name="deepglint_unoverlap_list.txt",
        count=72_690,
        sha256="7b53892799338b175c77a97c4c7fa482f3c12a0429183ec5080b1cd7f209f529",
        md5="8aee145af9325ba03b83f245c6753a73",
        source="github.com/xiaoboCASIA/SV-X-Softmax @ 89b536d4, deepglint_unoverlap_list.txt "
        "(MS-Celeb-1M-v1c-R of the MV-Softmax and SV-X-Softmax papers)",
    ),
    KnownWhitelist(
        name="facexzoo",
        aliases=("face-x-zoo", "fxz"),
        file_name="MS-Celeb-1M-v1c-r_id_list.txt",
        count=72_778,
        sha256="49db9dd3f7568f769d27fed25a79671875089f9c0f98969de7f0bb920895dbea",
        md5="91f226e6834e9ab32068b6acaa95a920",
        source="github.com/JDAI-CV/FaceX-Zoo @ 16b793a7, data/files/MS-Celeb-1M-v1c-r_id_list.txt "
        "(a different v1c-r list; 72,594 MIDs shared with the deepglint list)",
    ),
)

DEFAULT_WHITELIST = WHITELISTS[0]
WHITELIST_NAMES: Registry[KnownWhitelist] = Registry(
    "published whitelist", [(name, known) for known in WHITELISTS for name in (known.name, *known.aliases)]
)
"""Name or alias (lower case) -> the published list."""


def known_whitelist(name: str) -> KnownWhitelist | None:
    """The published list called ``name`` (or one of its aliases, case-insensitive), else ``None``."""
    key = name.strip().lower()
    return WHITELIST_NAMES[key] if key in WHITELIST_NAMES else None


@dataclass(frozen=True)
class Whitelist:
    """A whitelist file read and checked: its MIDs in file order and how it compares to the published list.

    ``expected`` is the published list this file is compared with: the one whose checksum it has, else the
    one named on the command line or sharing its file name, else the deepglint (v1c-R) list.
    """

    path: Path
    mids: tuple[str, ...]
    sha256: str
    md5: str
    expected: KnownWhitelist

    @property
    def published(self) -> bool:
        """True when the file is byte for byte the published list."""
        return self.sha256 == self.expected.sha256

    @property
    def name(self) -> str:
        """The published list's name when the file is that list, else ``custom``."""
        return self.expected.name if self.published else "custom"

    def mismatch_warning(self) -> str | None:
        """The warning naming both hashes when the file is not the published list, else ``None``."""
        if self.published:
            return None
        return (
            f"{self.path}: sha256 {self.sha256} is not the published {self.expected.name} list "
            f"(sha256 {self.expected.sha256}, {self.expected.count:,} MIDs, {self.expected.source}); "
            f"using this file as given ({len(self.mids):,} MIDs)"
        )


def find_whitelist(known: KnownWhitelist, search_dirs: Sequence[str | Path]) -> Path:
    """The file of a known list: ``DIR/<file_name>`` or ``DIR/*/<file_name>`` in the first folder that has it."""
    for folder in search_dirs:
        folder = Path(folder)
        direct = folder / known.file_name
        if direct.is_file():
            return direct
        if folder.is_dir():
            below = sorted(p for p in folder.glob(f"*/{known.file_name}") if p.is_file())
            if below:
                return below[0]
    where = ", ".join(str(d) for d in search_dirs) or "(no folder given)"
    raise FacebenchError(
        f"whitelist {known.name!r}: {known.file_name} ({known.source}) was not found in {where}; "
        "pass the file itself (--whitelist PATH) or the folder holding it (--whitelist-dir DIR, or set "
        "FACEBENCH_WHITELIST_DIR)"
    )


def read_whitelist(path: str | Path, expected: KnownWhitelist | None = None) -> Whitelist:
    """Read a whitelist: one MID per line (blank lines and a missing final newline are fine).

    A line that is not a MID, or a MID listed twice, is an error naming the file and line. ``expected``
    is the published list to compare with; by default the list whose checksum or file name matches,
    else the deepglint list.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FacebenchError(f"{path}: cannot read the whitelist: {exc.strerror or exc}") from exc
    sha256 = hashlib.sha256(data).hexdigest()
    md5 = hashlib.md5(data).hexdigest()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FacebenchError(f"{path}: not a text file of MIDs ({exc})") from exc
    mids: list[str] = []
    first_line: dict[str, int] = {}
    for line_no, line in enumerate(text.split("\n"), 1):
        mid = line.strip()
        if not mid:
            continue
        if not is_mid(mid):
            raise FacebenchError(f"{path} line {line_no}: {mid[:60]!r} is not a Freebase MID (m.0...)")
        if mid in first_line:
            raise FacebenchError(
                f"{path} line {line_no}: {mid} is listed twice (first at line {first_line[mid]}); "
                "a whitelist is a set of MIDs"
            )
        first_line[mid] = line_no
        mids.append(mid)
    if not mids:
        raise FacebenchError(f"{path}: the whitelist holds no MIDs")
    if expected is None:
        by_hash = [k for k in WHITELISTS if k.sha256 == sha256]
        by_name = [k for k in WHITELISTS if k.file_name == path.name]
        expected = (by_hash or by_name or [DEFAULT_WHITELIST])[0]
    return Whitelist(path=path, mids=tuple(mids), sha256=sha256, md5=md5, expected=expected)


def resolve_whitelist(spec: str | Path, search_dirs: Sequence[str | Path] = ()) -> Whitelist:
    """``spec`` is a file (read as is) or a known name (found in ``search_dirs``); read and identify it.

    A file wins over a name when both exist. A name fixes the published list the file is compared with.
    """
    path = Path(spec)
    if path.is_file():
        return read_whitelist(path)
    key = str(spec).strip().lower()
    if key not in WHITELIST_NAMES and path.exists():
        raise FacebenchError(f"{spec}: the whitelist must be a file of MIDs, one per line")
    known = WHITELIST_NAMES.get(key, f"--whitelist {spec} (no such file)")
    return read_whitelist(find_whitelist(known, search_dirs), expected=known)
