"""Ready for a GPU, checked on a CPU: no host synchronisation per training step in the
library's code, no tensor created without a device, and the audit that says so
catching each kind of mistake when one is made."""
from pathlib import Path

import pytest
import torch
from avalanche.core import SupervisedPlugin

from avalanche_nispa import NISPA, load_checkpoint, save_checkpoint
from avalanche_nispa.benchmarks import split_digits
from avalanche_nispa.plugins import RewiringPlugin
from avalanche_nispa.tensor_audit import StepAuditPlugin, TensorAudit

THIS_FILE = Path(__file__).resolve()


@pytest.fixture(scope="module")
def cil_digits():
    return split_digits(seed=0, return_task_id=False)


def _stream(kind, digits, cil_digits):
    return (cil_digits if kind == "replay" else digits).train_stream


# ------------------------------------------------------------ host synchronisations
@pytest.mark.parametrize("kind,cache_data", [("nispa", True), ("nispa", False), ("replay", True)])
def test_no_host_synchronisation_per_training_step_in_the_library(small_nispa,
        kind, cache_data, digits, cil_digits, quiet_evaluator):
    """Two experiences (the second with a frozen part, replay with a memory): every
    training step of the library's code (masking, replay, the model's forward, the
    loss check) runs without waiting for the device."""
    audit = TensorAudit()
    strategy = small_nispa(kind, quiet_evaluator(), [StepAuditPlugin(audit)], cache_data=cache_data)
    with audit:
        for experience in _stream(kind, digits, cil_digits)[:2]:
            strategy.train(experience)
    assert audit.steps > 20
    assert not audit.step_syncs, audit.report()


class _SyncingPlugin(SupervisedPlugin):
    """What a careless plugin does once per step."""

    def __init__(self, how):
        super().__init__()
        self.how = how

    def before_backward(self, strategy, **kwargs):
        loss, labels = strategy.loss, strategy.mb_y
        if self.how == "item":
            loss.item()
        elif self.how == "if":
            if (labels == 0).any():
                pass
        elif self.how == "mask":
            labels[labels > 0]
        elif self.how == "to":
            labels.to(strategy.device)
        elif self.how == "none":
            labels.to(strategy.device, non_blocking=True)
            torch.where(labels > 0, labels, 0)


@pytest.mark.parametrize("how", ["item", "if", "mask", "to", "none"])
def test_the_sync_audit_blames_every_step_that_waits_for_the_device(small_nispa, how, digits, quiet_evaluator):
    audit = TensorAudit(roots=[THIS_FILE])
    strategy = small_nispa("nispa", quiet_evaluator(), [_SyncingPlugin(how), StepAuditPlugin(audit)])
    with audit:
        strategy.train(digits.train_stream[0])
    blamed = {(event.file, event.function) for event in audit.step_syncs}
    if how == "none":
        assert audit.step_syncs == []
    else:
        assert len(audit.step_syncs) == audit.steps > 0
        assert blamed == {(str(THIS_FILE), "before_backward")}


def test_a_loss_item_in_nispa_backward_would_be_caught(small_nispa, digits, quiet_evaluator, monkeypatch):
    """The per-step audit blames the library's own files: a ``loss.item()`` added to
    ``NISPA.backward`` (written here into a function compiled as that file) is found
    once per step."""
    import avalanche_nispa.strategy.nispa as nispa_module

    source = "def backward(self):\n    self.loss.item()\n    real_backward(self)\n"
    namespace = {"real_backward": NISPA.backward}
    exec(compile(source, nispa_module.__file__, "exec"), namespace)
    monkeypatch.setattr(NISPA, "backward", namespace["backward"])
    audit = TensorAudit()
    strategy = small_nispa("nispa", quiet_evaluator(), [StepAuditPlugin(audit)])
    with audit:
        strategy.train(digits.train_stream[0])
    assert [e.op for e in audit.step_syncs] == ["item"] * audit.steps
    assert audit.step_syncs[0].file == str(Path(nispa_module.__file__).resolve())


# ------------------------------------------------------------------- devices
@pytest.mark.filterwarnings("ignore:hidden layer .* has no plastic unit left")
def test_every_tensor_the_library_creates_names_its_device(small_nispa, digits, cil_digits, quiet_evaluator,
                                                           tmp_path):
    """Training (selection, rewiring with the plugin's own generator, promotion, new
    heads), the replay memory, checkpoint save and load: no factory call of the
    library leaves the device to the default, which is the CPU even on a GPU box."""
    audit = TensorAudit()
    generator = torch.Generator().manual_seed(0)
    with audit:
        for kind in ("nispa", "replay"):
            strategy = small_nispa(kind, quiet_evaluator())
            if kind == "nispa":
                strategy.rewiring_plugin.generator = generator
            for experience in _stream(kind, digits, cil_digits)[:2]:
                strategy.train(experience)
            path = save_checkpoint(strategy, tmp_path / f"{kind}.ckpt")
            fresh = small_nispa(kind, quiet_evaluator())
            if kind == "nispa":
                fresh.rewiring_plugin.generator = torch.Generator().manual_seed(1)
            assert load_checkpoint(fresh, path) == 2
            fresh.train(_stream(kind, digits, cil_digits)[2])
    assert not audit.unplaced, audit.report()


def test_the_device_audit_flags_a_factory_without_a_device():
    audit = TensorAudit(roots=[THIS_FILE])
    with audit:
        torch.zeros(3)
        torch.randperm(4, device="cpu")
        torch.zeros_like(torch.ones(2, device="cpu"))
    assert [(e.op, e.line) for e in audit.unplaced] == [("zeros", _line_of("torch.zeros(3)"))]


def _line_of(text: str) -> int:
    lines = THIS_FILE.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.strip() == text)


def test_rewiring_draws_on_its_generators_device():
    """A seeded generator decides the rewiring whatever the layer's device: the draws
    are made where the generator lives, then moved (on a GPU a CPU generator would
    otherwise fail with "Expected a 'cuda' device type for generator")."""
    from avalanche_nispa.sparse.init import draw_device

    assert draw_device(None, torch.device("meta")) == torch.device("meta")
    assert draw_device(torch.Generator(), torch.device("meta")) == torch.device("cpu")
    plugin = RewiringPlugin(generator=torch.Generator().manual_seed(3))
    state = plugin.state_dict()["generator"]
    assert state.device.type == "cpu" and state.dtype == torch.uint8


# --------------------------------------------------------------- checkpoints
def _tensors(obj, where="checkpoint"):
    if isinstance(obj, torch.Tensor):
        yield where, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _tensors(value, f"{where}[{key!r}]")
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            yield from _tensors(value, f"{where}[{index}]")


@pytest.mark.parametrize("kind", ["nispa", "replay"])
def test_a_checkpoint_holds_cpu_tensors_only_and_reads_onto_any_device(small_nispa,
        kind, digits, cil_digits, quiet_evaluator, tmp_path):
    """What a GPU run saves loads on a CPU-only machine: every tensor of the file is a
    plain CPU tensor (generator states as CPU bytes, the memory's samples, the optimizer
    state), and reading it onto another device (``meta`` stands in for one here) keeps
    the header and its checksum on the CPU."""
    from avalanche_nispa.checkpoint import read_checkpoint

    strategy = small_nispa(kind, quiet_evaluator())
    if kind == "nispa":
        strategy.rewiring_plugin.generator = torch.Generator().manual_seed(0)
    strategy.train(_stream(kind, digits, cil_digits)[0])
    path = save_checkpoint(strategy, tmp_path / "run.ckpt")
    payload = read_checkpoint(path)
    found = dict(_tensors(payload))
    assert found and {(t.device.type, type(t)) for t in found.values()} == {("cpu", torch.Tensor)}
    if kind == "replay":
        assert any("memory" in where for where in found)
    else:
        (generator,) = [t for where, t in found.items() if "'generator'" in where]
        assert generator.dtype == torch.uint8
    elsewhere = read_checkpoint(path, map_location="meta")
    assert {t.device.type for t in dict(_tensors(elsewhere["model"])).values()} == {"meta"}
