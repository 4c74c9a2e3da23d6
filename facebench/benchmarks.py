"""Benchmark specs: one declarative file per benchmark in ``protocols/<name>.toml``.

A spec names the protocol kind (which evaluator runs it), the file layouts it can be read from (tried in
order under ``--data-root``), the known counts and official checksums, the table columns it contributes
and, for verification sets, the accuracy below which a result is implausible. Unknown keys are errors.

Schema (top level)::

    name = "lfw"                # must equal the file stem
    version = 1                 # bumped whenever the protocol's numbers could change
    kind = "pairs"              # a protocol kind of facebench.kinds (pairs, ijb_1to1, ijb_1n, megaface, ...)
    title = "LFW"
    citation = "..."
    description = "..."         # optional
    groups = ["verification"]   # optional: names usable in --benchmark (e.g. all-verification)
    order = 10                  # optional: position in tables and in group expansion (then by name)
    [counts]                    # known figures, checked against what is read (a mismatch is reported)
    [[source]]                  # one per distribution, tried in order
    reader = "binpack"
    files = { pack = "lfw.bin" }          # role -> path relative to --data-root
    optional = ["landmarks"]              # roles that may be absent
    [checksums]                 # file role or name -> list of known official sha256
    [columns]                   # metric key -> column label in tables
    [plausible]                 # e.g. min_accuracy = 0.9
    [options]                   # kind-specific settings, validated by the kind when specs load
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from facebench import kinds
from facebench.errors import FacebenchError
from facebench.registry import did_you_mean
from facebench.io.textdoc import TOMLDecodeError, parse_toml

_TOP_KEYS = {
    "name", "version", "kind", "title", "citation", "description", "groups", "order", "counts", "source",
    "checksums", "columns", "plausible", "options",
}
_SOURCE_KEYS = {"reader", "files", "optional", "note"}


@dataclass(frozen=True)
class Source:
    """One distribution of a benchmark: a reader and the files it needs (role -> relative path)."""

    reader: str
    files: Mapping[str, str]
    optional: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Benchmark:
    """A validated benchmark spec."""

    name: str
    version: int
    kind: str
    title: str
    citation: str
    sources: tuple[Source, ...]
    description: str = ""
    groups: tuple[str, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    checksums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    columns: Mapping[str, str] = field(default_factory=dict)
    plausible: Mapping[str, float] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    order: int = 1000
    path: str = ""


PROTOCOLS_ENV = "FACEBENCH_PROTOCOLS"


def protocols_dir() -> Path:
    """The directory of the shipped ``*.toml`` specs: the package data ``facebench/protocols`` of an installed
    wheel, else ``protocols/`` at the top of a checkout (a directory holding ``pyproject.toml``)."""
    here = Path(__file__).resolve().parent
    installed, checkout = here / "protocols", here.parent / "protocols"
    if installed.is_dir():
        return installed
    if checkout.is_dir() and (here.parent / "pyproject.toml").is_file():
        return checkout
    raise FacebenchError(
        f"this installation ships no benchmark specs: neither {installed} (installed package data) nor {checkout} "
        "(a checkout's protocols/) exists; reinstall facebench"
    )


def protocol_paths(extra: Iterable[str | Path] = ()) -> list[Path]:
    """Where specs are read, in order: the shipped directory, then each entry of ``$FACEBENCH_PROTOCOLS``
    (``os.pathsep``-separated), then ``extra`` (``--protocols``); each entry is a directory of ``*.toml`` or
    one ``.toml`` file, and must exist."""
    from_env = [p for p in os.environ.get(PROTOCOLS_ENV, "").split(os.pathsep) if p]
    paths = [protocols_dir()]
    for origin, entries in ((f"${PROTOCOLS_ENV}", from_env), ("--protocols", [str(e) for e in extra])):
        for entry in entries:
            path = Path(entry)
            if not (path.is_dir() or (path.is_file() and path.suffix == ".toml")):
                raise FacebenchError(f"{origin}: {entry} is neither a directory nor a .toml file")
            paths.append(path)
    return paths


@contextmanager
def user_protocols(extra: Sequence[str | Path]) -> Iterator[None]:
    """Within the block, ``extra`` (``--protocols``) is appended to ``$FACEBENCH_PROTOCOLS``, so every
    :func:`load_benchmarks` of the command, and its worker processes, read those specs; the variable is
    restored afterwards."""
    if not extra:
        yield
        return
    protocol_paths(extra)  # validated before anything runs
    before = os.environ.get(PROTOCOLS_ENV)
    os.environ[PROTOCOLS_ENV] = os.pathsep.join([*([before] if before else []), *map(str, extra)])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PROTOCOLS_ENV, None)
        else:
            os.environ[PROTOCOLS_ENV] = before


def parse_spec(data: dict[str, Any], origin: str) -> Benchmark:
    """Validate one spec's TOML table; every problem names ``origin`` and the field."""
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise FacebenchError(f"{origin}: unknown key(s) {unknown}; allowed: {sorted(_TOP_KEYS)}")
    for key in ("name", "version", "kind", "title", "citation", "source"):
        if key not in data:
            raise FacebenchError(f"{origin}: missing required key {key!r}")
    kind = kinds.get(str(data["kind"]), origin)
    if not kind.runnable:
        runnable = ", ".join(k.name for k in kinds.BUILT_IN if k.runnable)
        raise FacebenchError(f"{origin}: kind {kind.name!r} is not evaluated from a protocol file; use one of {runnable}")
    if not isinstance(data["version"], int) or data["version"] < 1:
        raise FacebenchError(f"{origin}: version must be a positive integer")
    sources = []
    for i, src in enumerate(data["source"]):
        bad = sorted(set(src) - _SOURCE_KEYS)
        if bad:
            raise FacebenchError(f"{origin}: source {i + 1}: unknown key(s) {bad}; allowed: {sorted(_SOURCE_KEYS)}")
        if "reader" not in src or "files" not in src:
            raise FacebenchError(f"{origin}: source {i + 1}: needs 'reader' and 'files'")
        optional = tuple(src.get("optional", ()))
        missing_roles = sorted(set(optional) - set(src["files"]))
        if missing_roles:
            raise FacebenchError(f"{origin}: source {i + 1}: optional role(s) {missing_roles} not in files")
        kind.check_reader(str(src["reader"]), f"{origin}: source {i + 1}")
        sources.append(Source(str(src["reader"]), dict(src["files"]), optional, str(src.get("note", ""))))
    kind.check_options(data.get("options", {}), f"{origin}: [options]")
    for path in data.get("columns", {}):
        kind.check_column(str(path), f"{origin}: [columns]")
    checksums = {}
    for name, values in data.get("checksums", {}).items():
        values = [values] if isinstance(values, str) else list(values)
        for v in values:
            if not (isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v)):
                raise FacebenchError(f"{origin}: checksums.{name}: {v!r} is not a lowercase hex sha256")
        checksums[name] = tuple(values)
    return Benchmark(
        name=str(data["name"]),
        version=int(data["version"]),
        kind=str(data["kind"]),
        title=str(data["title"]),
        citation=str(data["citation"]),
        sources=tuple(sources),
        description=str(data.get("description", "")),
        groups=tuple(data.get("groups", ())),
        counts={k: int(v) for k, v in data.get("counts", {}).items()},
        checksums=checksums,
        columns=dict(data.get("columns", {})),
        plausible={k: float(v) for k, v in data.get("plausible", {}).items()},
        options=dict(data.get("options", {})),
        order=int(data.get("order", 1000)),
        path=origin,
    )


def load_benchmarks(directory: str | Path | None = None, extra: Iterable[str | Path] = ()) -> dict[str, Benchmark]:
    """Read and validate every spec: those in ``directory`` alone when given, else the shipped specs plus
    the user's (:func:`protocol_paths`). Names are unique across all of them; finding none is an error
    that names where it looked."""
    where = [Path(directory)] if directory else protocol_paths(extra)
    files = [f for p in where for f in (sorted(p.glob("*.toml")) if p.is_dir() else [p])]
    specs: dict[str, Benchmark] = {}
    for path in files:
        try:
            data = parse_toml(path.read_text(encoding="utf-8"), str(path))
        except TOMLDecodeError as exc:
            raise FacebenchError(f"{path}: invalid TOML: {exc}") from exc
        spec = parse_spec(data, str(path))
        if spec.name != path.stem:
            raise FacebenchError(f"{path}: name {spec.name!r} differs from the file name {path.stem!r}")
        if spec.name in specs:
            raise FacebenchError(f"{path}: duplicate benchmark name {spec.name!r} (also {specs[spec.name].path})")
        specs[spec.name] = spec
    if not specs:
        raise FacebenchError(f"no benchmark spec (*.toml) found; looked in {', '.join(str(p) for p in where)}")
    return dict(sorted(specs.items(), key=lambda item: (item[1].order, item[0])))


def suggest(name: str, choices: Iterable[str]) -> str:
    """A "did you mean" suffix for an unknown name (empty when nothing is close): :func:`facebench.registry.did_you_mean`."""
    return did_you_mean(name, list(choices))


def own_benchmark(kind: str, path: str | Path) -> Benchmark:
    """The spec of ``--benchmark KIND:PATH``: your own data at ``PATH`` (relative to the current directory) as
    the kind's :class:`~facebench.kinds.base.OwnData` lays it out (``folder:`` an identity folder,
    ``alltoall:`` every pair of a folder or ``path label`` list, ``identify:`` gallery and probe lists).
    Its name is ``<kind>_<folder name>`` (used in results, ``--calibrate-on`` and ``--file NAME.ROLE=PATH``)."""
    own = kinds.get(kind).own_data
    if own is None:
        raise FacebenchError(f"--benchmark {kind}:PATH: kind {kind} does not evaluate your own data")
    root = Path(os.path.abspath(os.path.expanduser(str(path))))
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", root.name) or "root"
    fields = {"root": str(root), "dir": str(root if root.is_dir() else root.parent), "stem": stem}
    return Benchmark(
        name=f"{kind}_{stem}",
        version=1,
        kind=kind,
        title=root.name or str(root),
        citation=f"user data: {root}",
        sources=(Source(kind, {r: str(Path(t.format(**fields))) for r, t in own.files.items()}, own.optional),),
        description=own.description,
        columns={metric: label.format(**fields) for metric, label in own.columns.items()},
        path=str(root),
    )


def own_data_kinds() -> tuple[str, ...]:
    """The kinds that ``--benchmark KIND:PATH`` accepts (shipped ones)."""
    return tuple(k.name for k in kinds.BUILT_IN if k.own_data is not None)


def spec_overrides(name: str, file_overrides: Mapping[str, str] | None) -> dict[str, str]:
    """The ``ROLE -> PATH`` overrides of benchmark ``name`` among ``--file NAME.ROLE=PATH`` items."""
    prefix = f"{name}."
    return {k[len(prefix):]: v for k, v in (file_overrides or {}).items() if k.startswith(prefix)}


def check_overrides(
    file_overrides: Mapping[str, str] | None, selected: Iterable[Benchmark], registry: Mapping[str, Benchmark] | None = None
) -> None:
    """Every ``--file NAME.ROLE=PATH`` names one of the ``selected`` benchmarks and one of its file roles (any
    source's); otherwise an error listing the valid names or roles (a typo must not silently evaluate the
    default file). ``registry`` (every known benchmark) tells an unknown name from one not selected."""
    by_name = {b.name: b for b in selected}
    for key in file_overrides or {}:
        name, _, role = key.rpartition(".")
        spec = by_name.get(name)
        if spec is None:
            if registry is not None and name in registry:
                raise FacebenchError(
                    f"--file {key}: benchmark {name} is not selected (selected: {', '.join(by_name)}); add it to "
                    "--benchmark (with --benchmark found: the file it points at must exist)"
                )
            known = list(registry or by_name)
            raise FacebenchError(
                f"--file {key}: no benchmark {name!r}; selected: {', '.join(by_name)}{suggest(name, known)}"
            )
        roles = list(dict.fromkeys(r for src in spec.sources for r in src.files))
        if role not in roles:
            raise FacebenchError(
                f"--file {key}: {name} has no file role {role!r}; its roles: {', '.join(roles)}{suggest(role, roles)}"
            )


def found(
    specs: Mapping[str, Benchmark], data_root: str | Path, file_overrides: Mapping[str, str] | None = None
) -> list[Benchmark]:
    """The benchmarks of ``specs`` with a complete distribution under ``data_root`` (:func:`locate`)."""
    return [
        s for s in specs.values()
        if not isinstance(locate(s, data_root, spec_overrides(s.name, file_overrides)), list)
    ]


def select(
    names: str,
    specs: Mapping[str, Benchmark],
    data_root: str | Path | None = None,
    file_overrides: Mapping[str, str] | None = None,
) -> list[Benchmark]:
    """Resolve ``--benchmark`` text: comma list of names, ``all-<group>`` / ``all``, ``found`` (every
    benchmark whose files are under ``data_root``, :func:`found`) and ``KIND:PATH`` for your own data
    (``folder:``, ``alltoall:``, ``identify:``; :func:`own_benchmark`); order kept, no repeats."""
    chosen: list[Benchmark] = []
    for token in (t.strip() for t in names.split(",")):
        if not token:
            continue
        if token == "found":
            if data_root is None:
                raise FacebenchError("--benchmark found looks for benchmark files under --data-root; give it")
            group = found(specs, data_root, file_overrides)
            if not group:
                raise FacebenchError(
                    f"no benchmark files found under {Path(data_root).resolve()} (the layout of each benchmark: "
                    "`facebench benchmarks NAME`); set --data-root, or name benchmarks with --benchmark"
                )
        elif token.partition(":")[0] in own_data_kinds():
            prefix, _, path = token.partition(":")
            if not path:
                raise FacebenchError(f"--benchmark {prefix}:PATH needs a path after '{prefix}:'")
            group = [own_benchmark(prefix, path)]
            taken = {s.name for s in chosen} | set(specs)
            if group[0].name in taken and group[0] not in chosen:
                raise FacebenchError(f"{token}: its name {group[0].name!r} is already taken; rename the folder")
        elif token == "all":
            group = list(specs.values())
        elif token.startswith("all-"):
            wanted = token[4:]
            group = [s for s in specs.values() if wanted in s.groups]
            if not group:
                groups = sorted({g for s in specs.values() for g in s.groups})
                raise FacebenchError(f"unknown benchmark group {token!r}; known: {', '.join('all-' + g for g in groups)}")
        elif token in specs:
            group = [specs[token]]
        else:
            raise FacebenchError(f"unknown benchmark {token!r}{suggest(token, specs)} (see `facebench benchmarks`)")
        chosen.extend(s for s in group if s not in chosen)
    if not chosen:
        raise FacebenchError("no benchmark selected: give --benchmark NAME[,NAME...]")
    return chosen


def locate(
    spec: Benchmark, data_root: str | Path, overrides: Mapping[str, str] | None = None
) -> tuple[Source, dict[str, Path]] | list[str]:
    """The first source whose required files exist under ``data_root`` (after ``ROLE=PATH`` overrides) with
    its files as absolute paths (absent optional roles left out); or, when no source is complete, what each
    source lacks (``"<reader>: missing role=path, ..."``)."""
    root = Path(data_root)
    overrides = dict(overrides or {})
    reasons = []
    for src in spec.sources:
        present: dict[str, Path] = {}
        missing = []
        for role, rel in src.files.items():
            path = Path(overrides[role]) if role in overrides else root / rel
            if path.exists():
                present[role] = path
            elif role not in src.optional:
                missing.append(f"{role}={path}")
        if not missing:
            return src, present
        reasons.append(f"{src.reader}: missing {', '.join(missing)}")
    return reasons


def resolve_source(
    spec: Benchmark, data_root: str | Path, overrides: Mapping[str, str] | None = None
) -> tuple[Source, dict[str, Path]]:
    """:func:`locate`, or an error listing what each source looked for."""
    located = locate(spec, data_root, overrides)
    if isinstance(located, list):
        raise FacebenchError(
            f"{spec.name}: no complete distribution under {Path(data_root)}: " + "; ".join(located)
            + " (set --data-root, or point at a file with --file ROLE=PATH)"
        )
    return located


def check_checksum(spec: Benchmark, role: str, path: Path, sha256: str) -> str | None:
    """A warning naming both hashes when ``path`` is not a known official file (None when known or unlisted)."""
    known = spec.checksums.get(role) or spec.checksums.get(path.name)
    if not known or sha256 in known:
        return None
    return (
        f"{spec.name}: {path} has sha256 {sha256}, not the known official {' or '.join(known)}; "
        "evaluating it anyway (the hash is recorded in the results)"
    )
