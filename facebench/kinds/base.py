"""What a protocol kind declares: the :class:`Kind` object and its :class:`Metric` declarations.

A kind (pair verification, IJB 1:1, MegaFace, ...) is one module of :mod:`facebench.kinds` holding one
``KIND = Kind(...)``. Everything else asks it: spec loading (options, reader names), the run (evaluator),
the tables (rule text, higher-is-better), the statistics (interval and paired-test methods by metric),
the comparison page (figures), published tables (metrics and rule keys), calibration, doctor and the failure
gallery (pair verification). Code is referred to as ``"module:function"`` text and imported on first use,
so declaring a kind imports nothing heavy and nothing that imports the kinds back.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from facebench.errors import FacebenchError
from facebench.keys import is_rate_key, split_path
from facebench.registry import did_you_mean
from facebench.schema import from_table

#: How a rules value reads in a column's rule text, per rules key (the value itself for other keys; an
#: empty text leaves the key out).
RULE_TEXT: Mapping[str, Callable[[str], str]] = {
    "tpir_rule": lambda value: f"TPIR {value.split(':', 1)[0]}",
    "noise": lambda value: f"noise {value}",
    "tie_rule": lambda value: "" if value == ">=" else f"ties {value}",
}

#: The key grammars a metric path may carry after its head (:mod:`facebench.keys`).
KEY_GRAMMARS = ("", "rate", "rank", "size", "group", "field")
KEY_NAMES = {"size": "distractor size"}

ROC_CAPTION = "ROC of all pairs (sklearn's thinned curve); dotted lines: the table's FARs"


@dataclass(frozen=True)
class Metric:
    """One metric head of a kind's results (``metrics.<head>[.<key>]``).

    ``higher_is_better`` bolds the best cell of a column; ``unit``: ``fraction`` (shown as a percentage),
    ``ratio`` or ``count``; ``key``: the grammar of the part after the dot (``""`` none, ``rate``
    ``1e-04``, ``rank`` ``5``, ``size`` a distractor count, ``group`` ``attribute/value``, ``field``);
    ``key_values``: the only keys allowed, when not empty; ``rule_keys``: the ``rules`` entries that
    qualify the value (they make the column's rule text, in order); ``interval`` / ``paired_test``: the
    names of the statistics methods of :mod:`facebench.report.statistics` (``METHODS``), or
    ``"module:function"`` of one of your own, empty when none is defined.
    """

    head: str
    title: str = ""
    higher_is_better: bool = True
    unit: str = "fraction"
    key: str = ""
    key_values: tuple[str, ...] = ()
    rule_keys: tuple[str, ...] = ()
    interval: str = ""
    paired_test: str = ""

    def __post_init__(self) -> None:
        if self.key not in KEY_GRAMMARS:
            raise ValueError(f"metric {self.head}: key grammar {self.key!r} is not one of {KEY_GRAMMARS}")

    def check_key(self, path: str, where: str) -> None:
        """The metric ``path`` (this head, a dot and its key, or the head alone) must follow the key grammar."""
        key = path.partition(".")[2]
        if self.key_values:
            if key not in self.key_values:
                what = KEY_NAMES.get(self.key, self.key)
                raise FacebenchError(f"{where}: {self.head} needs a {what} key ({', '.join(self.key_values)})")
        elif self.key == "rate":
            if not is_rate_key(key):
                raise FacebenchError(f"{where}: {path!r} needs a rate key written like 1e-04 (f'{{rate:.0e}}')")
        elif self.key == "" and key:
            raise FacebenchError(f"{where}: {path!r}: {self.head} takes no key")


@dataclass(frozen=True)
class NoOptions:
    """A kind without ``[options]``: any key is an error."""


#: Declarations shared by every kind, for heads a kind does not declare itself (its own declaration wins).
COMMON: Mapping[str, Metric] = {
    m.head: m
    for m in (
        Metric("accuracy", "10-fold accuracy", rule_keys=("kfold",)),
        Metric("accuracy_std", "spread of the fold accuracies", higher_is_better=False, rule_keys=("kfold",)),
        Metric("fold_accuracies", "accuracy of each held-out fold", rule_keys=("kfold",)),
        Metric("tar_at_far", "TAR at a FAR target", key="rate", rule_keys=("tar_at_far",)),
        Metric("auc", "area under the ROC"),
        Metric("eer", "equal error rate (ROC crossing)", higher_is_better=False),
        Metric("eer_rocch", "equal error rate (ROC convex hull)", higher_is_better=False),
        Metric("tpir_at_fpir", "TPIR at an FPIR target", key="rate", rule_keys=("tpir_rule",)),
        Metric("fnir_at_fpir", "FNIR at an FPIR target", higher_is_better=False, key="rate", rule_keys=("tpir_rule",)),
        Metric("rank", "identification rate at rank k", key="rank"),
        Metric("map", "mean average precision"),
        Metric("ser", "skewed error ratio", higher_is_better=False, unit="ratio"),
        Metric("ser_kfold", "skewed error ratio of the 10-fold accuracies", higher_is_better=False, unit="ratio"),
        Metric("ir", "inequity rate", higher_is_better=False, unit="ratio"),
        Metric("garbe", "Gini aggregation rate for biometric equitability", higher_is_better=False),
        Metric("group_std", "spread over groups", higher_is_better=False, key="group"),
        Metric("group_fmr", "FMR of a group at the global threshold", higher_is_better=False, key="group"),
        Metric("group_fnmr", "FNMR of a group at the global threshold", higher_is_better=False, key="group"),
        Metric("erc_auc_fixed", "error-versus-discard area (fixed threshold)", higher_is_better=False, key="rate"),
        Metric("erc_auc_refit", "error-versus-discard area (refitted threshold)", higher_is_better=False, key="rate"),
        Metric("erc_pauc_fixed", "partial error-versus-discard area (fixed)", higher_is_better=False, key="rate"),
        Metric("erc_pauc_refit", "partial error-versus-discard area (refitted)", higher_is_better=False, key="rate"),
    )
}


def common(head: str, **changes: Any) -> Metric:
    """The shared declaration of ``head`` with ``changes`` (e.g. the interval method a kind defines for it)."""
    return dataclasses.replace(COMMON[head], **changes)


def resolve(reference: str, what: str) -> Callable[..., Any]:
    """The function named by ``"package.module:function"``, imported now."""
    module, sep, name = reference.partition(":")
    if not sep or not module or not name:
        raise FacebenchError(f"{what}: {reference!r} is not 'module:function'")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise FacebenchError(f"{what}: cannot load {reference}: {exc}") from exc


@dataclass(frozen=True)
class OwnData:
    """``--benchmark <kind>:PATH``: a benchmark of your own data at ``PATH`` (named ``<kind>_<stem>``).

    ``files`` (role -> path) and ``columns`` (metric path -> label) are templates of ``{root}`` (``PATH``
    made absolute), ``{dir}`` (``PATH`` when a folder, else its folder) and ``{stem}`` (its name with every
    character outside ``[A-Za-z0-9_.-]`` made ``_``); ``optional``: the roles that may be absent.
    """

    description: str
    files: Mapping[str, str]
    optional: tuple[str, ...] = ()
    columns: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Kind:
    """One protocol kind, declared in one place (see the module docstring for who asks what).

    - ``name``: the ``kind`` of protocol files and results entries; ``title``: what it evaluates.
    - ``evaluator``: ``"module:function"``, ``function(spec, ctx) -> BenchmarkResult``; empty for a kind
      no protocol file may name (``scores``: written by `facebench score`).
    - ``readers``: the reader names a spec's ``[[source]]`` may use (checked when specs load).
    - ``options``: a dataclass of the ``[options]`` table (types checked by :func:`facebench.schema.from_table`
      when specs load; a ``check(self, where)`` method adds value rules).
    - ``metrics``: its metric heads (:class:`Metric`); heads it does not declare take :data:`COMMON`'s
      declaration, with ``other_rule_keys`` as their rule keys when set.
    - ``figures``: the comparison page's figures of its benchmarks, by name (``roc``, ``det``,
      ``det_galleries``, ``cmc_galleries``, ``cmc_distractors``, ``folds``), in order; ``roc_caption``.
    - ``published_metrics`` / ``published_rule_keys``: what a published table may give for it.
    - ``pair_data``: ``"module:function"``, ``function(reader, paths, options, seed, max_pairs) -> PairData``
      when the kind is 10-fold pair verification (calibration, doctor and the failure gallery need it).
    - ``drops_unenrolled``: its evaluator can leave out pairs whose images did not enrol (``--on-no-face skip``).
    - ``own_data``: how ``--benchmark <kind>:PATH`` makes a benchmark of your own data (:class:`OwnData`).
    """

    name: str
    title: str
    evaluator: str = ""
    readers: tuple[str, ...] = ()
    options: type = NoOptions
    metrics: tuple[Metric, ...] = ()
    other_rule_keys: tuple[str, ...] | None = None
    figures: tuple[str, ...] = ("roc", "det")
    roc_caption: str = ROC_CAPTION
    published_metrics: tuple[str, ...] = ()
    published_rule_keys: tuple[str, ...] = ()
    pair_data: str = ""
    drops_unenrolled: bool = False
    own_data: OwnData | None = None
    _by_head: Mapping[str, Metric] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        heads = [m.head for m in self.metrics]
        if len(set(heads)) != len(heads):
            raise ValueError(f"kind {self.name}: a metric head is declared twice: {heads}")
        object.__setattr__(self, "_by_head", {m.head: m for m in self.metrics})
        unknown = [h for h in self.published_metrics if h not in self._by_head and h not in COMMON]
        if unknown:
            raise ValueError(f"kind {self.name}: published metrics {unknown} are not declared")
        if not dataclasses.is_dataclass(self.options):
            raise ValueError(f"kind {self.name}: options must be a dataclass")

    # ------------------------------------------------------------------------------------- metrics

    def metric(self, head: str) -> Metric:
        """The declaration of metric ``head`` (the kind's own, else the shared one, else a plain fraction)."""
        own = self._by_head.get(head)
        if own is not None:
            return own
        shared = COMMON.get(head, Metric(head))
        if self.other_rule_keys is not None:
            return dataclasses.replace(shared, rule_keys=self.other_rule_keys)
        return shared

    def rule(self, rules: Mapping[str, Any], path: str) -> str:
        """The rule text of metric ``path`` from an entry's ``rules``: the metric's rule keys present,
        each as :data:`RULE_TEXT` writes it, joined by ``", "``."""
        parts = []
        for key in self.metric(split_path(path)[0]).rule_keys:
            value = rules.get(key)
            if value in (None, ""):
                continue
            text = RULE_TEXT[key](str(value)) if key in RULE_TEXT else str(value)
            if text:
                parts.append(text)
        return ", ".join(parts)

    # ------------------------------------------------------------------------------------- specs

    def check_options(self, table: Mapping[str, Any], where: str) -> Any:
        """The ``[options]`` table as the kind's options dataclass; an unknown key, a wrong type or a value
        its ``check`` refuses is an error naming ``where``."""
        options = from_table(self.options, dict(table), where)
        check = getattr(options, "check", None)
        if check is not None:
            check(where)
        return options

    def check_column(self, path: str, where: str) -> None:
        """A ``[columns]`` metric path must name a metric the kind declares (its own or a shared one) with a key
        of that metric's grammar."""
        head = split_path(path)[0]
        if head not in self._by_head and head not in COMMON:
            known = sorted({*self._by_head, *COMMON})
            raise FacebenchError(
                f"{where}: {path!r}: {head!r} is not a metric of a {self.name} benchmark{did_you_mean(head, known)}"
            )
        self.metric(head).check_key(path, where)

    def check_reader(self, reader: str, where: str) -> None:
        """``reader`` must be one of the kind's readers."""
        if reader not in self.readers:
            raise FacebenchError(
                f"{where}: reader {reader!r} cannot feed a {self.name} benchmark"
                f"{did_you_mean(reader, self.readers)} (its readers: {', '.join(self.readers) or 'none'})"
            )

    # ------------------------------------------------------------------------------------- code

    @property
    def runnable(self) -> bool:
        """Whether a protocol file may name this kind (it has an evaluator)."""
        return bool(self.evaluator)

    @property
    def pair_verification(self) -> bool:
        """Whether the kind is 10-fold pair verification (held-out decisions, per-pair scores)."""
        return bool(self.pair_data)

    def load_evaluator(self) -> Callable[..., Any]:
        """The evaluator function, imported now."""
        if not self.evaluator:
            raise FacebenchError(f"kind {self.name} has no evaluator (its results are written by another command)")
        return resolve(self.evaluator, f"kind {self.name}: evaluator")

    def load_pair_data(self) -> Callable[..., Any]:
        """The pair reader of a pair-verification kind, imported now."""
        if not self.pair_data:
            raise FacebenchError(f"kind {self.name} is not pair verification")
        return resolve(self.pair_data, f"kind {self.name}: pair_data")
