"""Every named table answers a misspelt name the same way, through its public entry point: the error names
the table, suggests the close name and lists the known ones (facebench.registry.Registry)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from facebench.cli import main
from facebench.errors import FacebenchError

TRAIN_BASE = {
    "run": {"output": '"out"'},
    "data": {"source": '"folder"', "path": '"faces"'},
    "model": {"backbone": '"mobilefacenet"'},
    "schedule": {"steps": "100"},
}


def _train_toml(section: str, key: str, value: str) -> str:
    """A valid training config with ``[section] key = "value"`` set (a new section when it is not one)."""
    tables = {name: dict(keys) for name, keys in TRAIN_BASE.items()}
    tables.setdefault(section, {})[key] = f'"{value}"'
    return "".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) for name, keys in tables.items())


@pytest.mark.parametrize("section, key, value, message", [
    ("head", "type", "mv-amm", "[head] type: unknown head 'mv-amm'; did you mean 'mv-am'"),
    ("head", "mode", "fixd", "[head] mode: unknown MV mode 'fixd'; did you mean 'fixed'"),
    ("head", "variant", "facexzo", "[head] variant: unknown head variant 'facexzo'; did you mean 'facexzoo'"),
    ("loss", "type", "focl", "[loss] type: unknown loss 'focl'; did you mean 'focal'"),
    ("model", "backbone", "iresnet5", "[model] backbone: unknown architecture 'iresnet5'; did you mean 'iresnet50'"),
    ("data", "profile", "insightfase", "[data] profile: unknown profile 'insightfase'; did you mean 'insightface'"),
    ("data", "source", "foldr", "[data] source: unknown data source 'foldr'; did you mean 'folder'"),
    ("data", "identity_key", "lable", "[data] identity_key: unknown identity key 'lable'; did you mean 'label'"),
    ("schedule", "kind", "cosin", "[schedule] kind: unknown schedule kind 'cosin'; did you mean 'cosine'"),
    ("run", "precision", "bf61", "[run] precision: unknown precision 'bf61'; did you mean 'bf16'"),
    ("run", "device", "cdua", "[run] device: unknown device 'cdua'; did you mean 'cuda'"),
    ("optimm", "lr", "0.1", "unknown section 'optimm'; did you mean 'optim'"),
])
def test_train_config_names_are_checked_with_a_suggestion(tmp_path: Path, capsys, section, key, value, message):
    path = tmp_path / "train.toml"
    path.write_text(_train_toml(section, key, value))
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"facebench: error: {path}: {message}" in err and "(known: " in err
    assert len(err.strip().splitlines()) == 1


def _raises(call: Callable[[], object]) -> str:
    with pytest.raises(FacebenchError) as info:
        call()
    return str(info.value)


def _backbone():
    from facebench.models.registry import create_backbone

    return create_backbone("iresnet5")


def _profile():
    from facebench.extraction.preprocess import get_profile

    return get_profile("insightfase")


def _flip():
    from facebench.extraction.preprocess import Profile

    return Profile("mine", flip="ad")  # type: ignore[arg-type]


def _head():
    from facebench.train.heads import make_head

    return make_head("arcc", 8, 4)


def _loss():
    from facebench.train.losses import make_loss

    return make_loss("hard_mining")


def _data_source():
    from facebench.train.data import DataSpec, open_source

    return open_source(DataSpec(source="recordoi", path="train.rec"))


def _identity_key(tmp: Path):
    from facebench.train.data import read_list

    return read_list(tmp / "list.txt", identity_key="dirr")


def _device():
    from facebench.train.distributed import init_distributed

    return init_distributed("gpu")


def _dialect(tmp: Path):
    from facebench.io.pairlists import read_pair_list

    (tmp / "pairs.txt").write_text("a.jpg b.jpg 1\n")
    return read_pair_list(tmp / "pairs.txt", tmp, dialect="path_label_path")


def _cfp(tmp: Path):
    from facebench.io.pairlists import read_cfp

    return read_cfp(tmp, "pf")


def _ijb_prefix(tmp: Path):
    from facebench.io.ijb import layout

    return layout(tmp, "ijbcc")


def _detector():
    from facebench.extraction.detection import get_detector

    return get_detector("dlib_hog")


def _no_face():
    from facebench.extraction.enrol import EnrolOptions

    return EnrolOptions(on_no_face="centre-crop")


def _landmark_frame():
    from facebench.extraction.enrol import EnrolOptions

    return EnrolOptions(landmark_frame="uprigth")


def _checkpoint_format(tmp: Path):
    from facebench.models.loader import load_encoder

    return load_encoder(tmp / "model.onnx", format="onxx")


def _export_format(tmp: Path):
    from facebench.models.export import export_checked
    from facebench.models.torch_backend import TorchEncoder
    from tests._models import random_backbone

    encoder = TorchEncoder(random_backbone("mobilefacenet_small"), format="pytorch", path=None, device="cpu")
    return export_checked(encoder, tmp / "out.pt", "torchscrip")


def _score_format(tmp: Path):
    from facebench.io.scorefiles import read_score_file

    return read_score_file(tmp / "scores.txt", "5colm")


def _listing_kind(tmp: Path):
    from facebench.overlap.listing import read_listing

    (tmp / "list.txt").write_text("m.0abc\n")
    return read_listing(tmp / "list.txt", "mid")


def _name_rule():
    from facebench.overlap.names import match_identities

    return match_identities([["Ann Lee"]], [["Ann Lee"]], "initals")


def _whitelist(tmp: Path):
    from facebench.overlap.whitelists import resolve_whitelist

    return resolve_whitelist("deepglnt", [tmp])


def _removal_policy():
    from facebench.overlap.audit import AuditRules

    return AuditRules(remove_on="nams")


def _api_setting():
    import numpy as np

    from facebench.api import evaluate_benchmark

    return evaluate_benchmark("lfw", np.zeros((2, 4), dtype=np.float32), kfold_rul="insightface")


@pytest.mark.parametrize("call, message", [
    (_backbone, "unknown architecture 'iresnet5'; did you mean 'iresnet50'"),
    (_profile, "unknown profile 'insightfase'; did you mean 'insightface'"),
    (_flip, "profile 'mine': flip: unknown flip mode 'ad'; did you mean 'add'"),
    (_head, "unknown head 'arcc'; did you mean 'arc'"),
    (_loss, "unknown loss 'hard_mining'; did you mean 'hard-mining'"),
    (_data_source, "unknown data source 'recordoi'; did you mean 'recordio'"),
    (_identity_key, "identity_key: unknown identity key 'dirr'; did you mean 'dir'"),
    (_device, "unknown device 'gpu'"),  # nothing close: no suggestion, the list only
    (_dialect, "unknown pair-list dialect 'path_label_path'; did you mean 'path_path_label'"),
    (_cfp, "unknown CFP protocol 'PF'; did you mean 'FP'"),
    (_ijb_prefix, "unknown IJB prefix 'ijbcc'; did you mean 'ijbc'"),
    (_detector, "unknown detector 'dlib_hog'; did you mean 'dlib-hog'"),
    (_no_face, "--on-no-face: unknown no-face policy 'centre-crop'; did you mean 'center-crop'"),
    (_landmark_frame, "--landmark-frame: unknown landmark frame 'uprigth'; did you mean 'upright'"),
    (_checkpoint_format, "unknown checkpoint format 'onxx'; did you mean 'onnx'"),
    (_export_format, "unknown export format 'torchscrip'; did you mean 'torchscript'"),
    (_score_format, "unknown score file format '5colm'; did you mean '5col'"),
    (_listing_kind, "unknown listing kind 'mid'; did you mean 'mids'"),
    (_name_rule, "unknown name rule 'initals'; did you mean 'initials'"),
    (_whitelist, "--whitelist deepglnt (no such file): unknown published whitelist 'deepglnt'; did you mean "
                 "'deepglint'"),
    (_removal_policy, "--remove-on: unknown removal policy 'nams'; did you mean 'names'"),
    (_api_setting, "unknown setting 'kfold_rul'; did you mean 'kfold_rule'"),
], ids=lambda v: v.__name__.lstrip("_") if callable(v) else "")
def test_a_misspelt_name_names_the_table_and_suggests(tmp_path: Path, call, message):
    takes_dir = call.__code__.co_argcount == 1
    text = _raises((lambda: call(tmp_path)) if takes_dir else call)
    assert message in text and "(known: " in text


def test_a_misspelt_command_is_answered_with_the_command_table(capsys):
    assert main(["-q", "reprot", "run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "facebench: error: unknown command 'reprot'; did you mean 'report' or 'export'? (known: run, demo, ")
    assert len(err.strip().splitlines()) == 1
