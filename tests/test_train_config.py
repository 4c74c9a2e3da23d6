"""Training config validation and the learning-rate schedule."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from facebench.cli import main
from facebench.errors import FacebenchError
from facebench.train.config import config_from_dict, load_config, resume_differences
from facebench.train.schedule import LrSchedule, resolve_schedule

BASE = {
    "run": {"output": "out"},
    "data": {"source": "folder", "path": "faces"},
    "model": {"backbone": "mobilefacenet"},
    "schedule": {"epochs": 18, "milestones": [10, 13, 16]},
}


def _with(section: str, **values) -> dict:
    data = {k: dict(v) for k, v in BASE.items()}
    data.setdefault(section, {}).update(values)
    return data


def test_defaults_are_the_paper_head():
    cfg = config_from_dict(BASE, "x.toml")
    assert (cfg.head.type, cfg.head.mode, cfg.head.easy_margin, cfg.loss.type) == ("mv-am", "adaptive", True,
                                                                                   "cross-entropy")
    assert cfg.optim.lr == 0.1 and cfg.optim.weight_decay == 5e-4 and cfg.data.profile == "insightface"


@pytest.mark.parametrize("data,message", [
    ({**BASE, "optimizer": {}}, r"x.toml: unknown section 'optimizer'; did you mean 'optim'"),
    (_with("head", margin=0.3), r"\[head\] unknown key 'margin'"),
    (_with("optim", lr="0.1"), r"\[optim\] lr: expected a number, got '0.1'"),
    (_with("data", batch_size=12.5), r"\[data\] batch_size: expected an integer"),
    (_with("data", flip=1), r"\[data\] flip: expected true or false"),
    ({k: v for k, v in BASE.items() if k != "model"}, r"missing section \[model\]"),
    ({**BASE, "model": {}}, r"\[model\] missing required key 'backbone'"),
    (_with("schedule", steps=100), "exactly one of epochs and steps"),
    (_with("schedule", milestones=[13, 10]), "milestones must increase"),
    (_with("schedule", milestones=[10, 18]), r"inside \(0, 18"),
    (_with("schedule", kind="cosine"), "milestones apply to kind"),
    (_with("schedule", kind="exponential", milestones=[]), r"\[schedule\] kind: unknown schedule kind 'exponential' \(known: step, poly"),
    (_with("head", type="softmax", m=0.3), "takes no margin"),
    (_with("head", type="am", t=0.2), "takes no t or mode"),
    (_with("head", type="mv-amm"), "did you mean 'mv-am'"),
    (_with("loss", type="focal", gamma=-1.0), "gamma must be >= 0"),
    (_with("data", source="lmdb"), r"\[data\] source: unknown data source 'lmdb' \(known: recordio, folder, list\)"),
    (_with("data", identity_key="label"), "identity_key applies to source = \"list\" only"),
    (_with("data", profile="dlib"), "not a 112x112 ArcFace-chip profile"),
    (_with("run", precision="fp8"), r"\[run\] precision"),
    (_with("validation", benchmarks=["lfw"]), "need data_root"),
    (_with("optim", momentum=0.0, nesterov=True), "nesterov needs momentum"),
])
def test_config_errors_name_file_section_and_key(data, message):
    with pytest.raises(FacebenchError, match=message):
        config_from_dict(data, "x.toml")


def test_load_config_with_overrides_and_cli_errors(tmp_path: Path, capsys):
    path = tmp_path / "t.toml"
    path.write_text('[run]\noutput = "o"\n[data]\nsource = "folder"\npath = "f"\n[model]\nbackbone = "iresnet50"\n'
                    "[schedule]\nsteps = 100\n")
    cfg = load_config(path, ["optim.lr=0.05", "head.type=mv-arc", "data.path=/x/y"])
    assert cfg.optim.lr == 0.05 and cfg.head.type == "mv-arc" and cfg.data.path == "/x/y"
    with pytest.raises(FacebenchError, match="expected SECTION.KEY=VALUE"):
        load_config(path, ["lr=0.05"])
    path.write_text(path.read_text() + "[optim]\nlr = 0.1\nmomentun = 0.9\n")
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: [optim] unknown key 'momentun'; did you mean 'momentum'" in err
    path.write_text("[run\n")
    assert main(["train", "--config", str(path)]) == 2
    assert "invalid TOML" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "none.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_resume_differences():
    a = config_from_dict(BASE, "a")
    b = config_from_dict(_with("head", m=0.3), "b")
    c = config_from_dict(_with("data", workers=9), "c")
    assert resume_differences(a.to_dict(), b) == ["head.m: None -> 0.3"]
    assert resume_differences(a.to_dict(), c) == []


def test_schedule_rules():
    step = LrSchedule(lr=0.1, total_steps=100, kind="step", milestones=(50, 80), gamma=0.1, warmup_steps=10,
                      warmup_start=0.0)
    assert step.lr_at(0) == pytest.approx(0.01) and step.lr_at(9) == pytest.approx(0.1)
    assert step.lr_at(49) == pytest.approx(0.1) and step.lr_at(50) == pytest.approx(0.01)
    assert step.lr_at(80) == pytest.approx(0.001)
    cos = LrSchedule(lr=0.1, total_steps=110, kind="cosine", warmup_steps=10, min_lr=0.001)
    assert cos.lr_at(10) == pytest.approx(0.1)
    assert cos.lr_at(60) == pytest.approx(0.001 + 0.099 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    poly = LrSchedule(lr=0.1, total_steps=100, kind="poly", power=2.0)
    assert poly.lr_at(50) == pytest.approx(0.1 * 0.25)
    cfg = config_from_dict(_with("schedule", warmup=0.5), "x")
    sched = resolve_schedule(cfg.schedule, cfg.optim.lr, steps_per_epoch=200)
    assert sched.total_steps == 3600 and sched.milestones == (2000, 2600, 3200) and sched.warmup_steps == 100
