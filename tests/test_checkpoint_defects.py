"""Checkpoint defects of issue 12: mid-experience saves, plugin-driven resume with
forgetting history, damaged files, fingerprints, a full disk, the next-experience index."""
import errno
import os

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import accuracy_metrics, bwt_metrics, forgetting_metrics

from avalanche_nispa import NISPA, CheckpointPlugin, load_checkpoint, save_checkpoint
from avalanche_nispa.atomic import previous_path
from avalanche_nispa.checkpoint import read_checkpoint
from avalanche_nispa.checkpoint.files import DamagedCheckpointError
from avalanche_nispa.models import NISPAMLP, to_nispa

N_EXPERIENCES = 4


@pytest.fixture
def build(quiet_evaluator):
    """``build(seed, plugins=(), model=None, criterion=None)``: a small NISPA run whose
    evaluator tracks accuracy, forgetting and BWT."""

    def make(seed, plugins=(), model=None, criterion=None):
        torch.manual_seed(seed)
        model = model if model is not None else NISPAMLP(64, (32, 32), density=0.3)
        evaluator = quiet_evaluator(accuracy_metrics(experience=True, stream=True),
                                    forgetting_metrics(experience=True, stream=True),
                                    bwt_metrics(experience=True, stream=True))
        return NISPA(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                     criterion=criterion, train_mb_size=64, eval_mb_size=512, phase_epochs=1,
                     max_phases=3, evaluator=evaluator, plugins=list(plugins))

    return make


class SaveInside(SupervisedPlugin):
    def __init__(self, path):
        super().__init__()
        self.path = path

    def after_training_epoch(self, strategy, **kwargs):
        save_checkpoint(strategy, self.path)


def test_a_checkpoint_inside_an_experience_is_refused_and_nothing_is_written(digits, tmp_path, build):
    path = tmp_path / "run.ckpt"
    strategy = build(0, plugins=[SaveInside(path)])
    with pytest.raises(RuntimeError, match=r"a training experience is under way \(experience 0\).*"
                                           r"Save between experiences"):
        strategy.train(digits.train_stream[0])
    assert not path.exists()


def test_plugin_driven_resume_after_a_kill_keeps_accuracies_and_forgetting_history(digits, tmp_path, build,
                                                                                 kill):
    path = tmp_path / "run.ckpt"
    reference = build(0)
    for experience in digits.train_stream[:N_EXPERIENCES]:
        reference.train(experience)
        reference.eval(digits.test_stream)

    killed = build(0, plugins=[CheckpointPlugin(path), kill.During(2, 3)])
    with pytest.raises(kill.Interrupted):
        for experience in digits.train_stream[:N_EXPERIENCES]:
            killed.train(experience)
            killed.eval(digits.test_stream)

    resumed = build(99, plugins=[CheckpointPlugin(path)])
    start = load_checkpoint(resumed, path, missing_ok=True)  # the default: no unpickling
    assert start == 2
    for experience in digits.train_stream[start:N_EXPERIENCES]:
        resumed.train(experience)
        resumed.eval(digits.test_stream)
    expected, got = reference.evaluator.get_all_metrics(), resumed.evaluator.get_all_metrics()
    forgetting = [name for name in expected if name.startswith(("ExperienceForgetting", "ExperienceBWT"))]
    assert len(forgetting) == 2 * (N_EXPERIENCES - 1)  # Exp000..Exp002, each twice
    assert got == expected  # every metric, every x position: accuracies, forgetting, BWT


def _flip_one_bit(path, position):
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_damaged_checkpoint_is_refused_and_the_previous_one_is_used_instead(digits, tmp_path, build):
    path = tmp_path / "run.ckpt"
    strategy = build(0)
    for experience in digits.train_stream[:2]:
        strategy.train(experience)
        save_checkpoint(strategy, path)
    assert read_checkpoint(path)["next_experience"] == 2
    assert read_checkpoint(previous_path(path))["next_experience"] == 1
    _flip_one_bit(path, path.stat().st_size // 2)  # inside the body
    with pytest.raises(DamagedCheckpointError, match="is damaged: its contents do not match their "
                                                     "SHA-256 checksum"):
        read_checkpoint(path, fallback=False)
    with pytest.warns(RuntimeWarning, match=r"is damaged.*loading the previous checkpoint .*"
                                            r"run.ckpt.previous instead \(saved after 1 experiences\)"):
        resumed = build(0)
        assert load_checkpoint(resumed, path) == 1


def test_the_checkpoint_plugin_replaces_its_own_damaged_file(digits, tmp_path, build):
    path = tmp_path / "run.ckpt"
    strategy = build(0, plugins=[CheckpointPlugin(path)])
    for experience in digits.train_stream[:2]:
        strategy.train(experience)
    path.write_bytes(b"\0" * 64)  # the newest file destroyed, header and all
    resumed = build(0, plugins=[CheckpointPlugin(path)])
    with pytest.warns(RuntimeWarning, match="loading the previous checkpoint"):
        start = load_checkpoint(resumed, path)
    assert start == 1
    resumed.train(digits.train_stream[start])  # no refusal: the damaged file was this run's
    assert read_checkpoint(path)["next_experience"] == 2


def test_a_resume_with_another_model_setting_or_loss_is_refused(digits, tmp_path, build):
    def conv_model(padding, dropout):
        return to_nispa(torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=padding), torch.nn.ReLU(), torch.nn.Flatten(),
            torch.nn.Dropout(dropout), torch.nn.Linear(4 * (8 - 2 + 2 * padding) ** 2, 10)),
            density=0.5)

    path = tmp_path / "run.ckpt"
    saved = build(0, model=NISPAMLP(64, (32, 32), density=0.3))
    saved.train(digits.train_stream[0])
    save_checkpoint(saved, path)
    other_loss = build(0, criterion=torch.nn.CrossEntropyLoss(label_smoothing=0.1))
    with pytest.raises(ValueError, match=r"criterion was .*CrossEntropyLoss\(.*label_smoothing=0\.0"):
        load_checkpoint(other_loss, path)

    from avalanche_nispa.checkpoint import model_fingerprint
    base = model_fingerprint(conv_model(1, 0.5))
    assert model_fingerprint(conv_model(1, 0.5)) == base
    assert model_fingerprint(conv_model(1, 0.2))["body"] != base["body"]  # dropout probability
    padded = model_fingerprint(conv_model(2, 0.5))["body"]
    assert any("padding=(2, 2)" in line for line in padded) and padded != base["body"]


def test_a_full_disk_names_the_path_and_leaves_no_partial_file(digits, tmp_path, build, monkeypatch):
    path = tmp_path / "run.ckpt"
    strategy = build(0)
    strategy.train(digits.train_stream[0])
    save_checkpoint(strategy, path)
    before = path.read_bytes()
    strategy.train(digits.train_stream[1])

    real_fsync = os.fsync

    def full(descriptor):
        real_fsync(descriptor)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=rf"could not write {path}: No space left on device; nothing "
                                      r"was changed there \(free disk space"):
        save_checkpoint(strategy, path)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt"]
    assert path.read_bytes() == before


def test_next_experience_counts_experiences_not_train_calls(digits, tmp_path, build):
    strategy = build(0)
    strategy.train(digits.train_stream[0])
    strategy.train(digits.train_stream[0])  # the same experience again
    assert save_checkpoint(strategy, tmp_path / "a.ckpt") and \
        read_checkpoint(tmp_path / "a.ckpt")["next_experience"] == 1
    listed = build(0)
    listed.train(list(digits.train_stream[:2]))  # a list in one call
    save_checkpoint(listed, tmp_path / "b.ckpt")
    assert read_checkpoint(tmp_path / "b.ckpt")["next_experience"] == 2
