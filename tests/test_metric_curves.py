"""NISPA's metrics are curves: one name per metric (and layer), the number of trained
experiences as the step, as Avalanche's own metrics are; TensorBoard and the CSV
logger read them back that way."""
from __future__ import annotations

import csv

import pytest
import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.logging import TensorboardLogger
from avalanche.training.plugins import EvaluationPlugin
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from avalanche_nispa import NISPA
from avalanche_nispa.logging import UnitStateCSVLogger
from avalanche_nispa.models import NISPAMLP
from avalanche_nispa.sparse import STABLE

N_EXPERIENCES = 3
LAYERS = ("body.1", "body.3", "head")
PER_LAYER = ("stable", "candidate", "plastic", "live_connections", "frozen_connections", "density")
PER_EXPERIENCE = ("active_parameters", "frozen_parameters", "total_parameters", "phases", "final_tau")
PREFIX = "train_phase/train_stream"
EXPECTED_TAGS = {f"NISPA_{key}/{PREFIX}/{layer}" for key in PER_LAYER for layer in LAYERS} | {
    f"NISPA_{key}/{PREFIX}" for key in PER_EXPERIENCE}


@pytest.fixture(scope="module")
def logged_run(digits, tmp_path_factory):
    """Three experiences of NISPA on the digits, logged to TensorBoard and to CSV."""
    folder = tmp_path_factory.mktemp("nispa_logs")
    torch.manual_seed(11)
    model = NISPAMLP(64, (32, 32), density=0.3)
    tensorboard = TensorboardLogger(folder / "tb")
    evaluator = EvaluationPlugin(accuracy_metrics(experience=True),
                                 loggers=[tensorboard, UnitStateCSVLogger(folder)])
    strategy = NISPA(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                     train_mb_size=64, eval_mb_size=512, phase_epochs=1, max_phases=2,
                     evaluator=evaluator)
    stable = {}
    for experience in digits.train_stream[:N_EXPERIENCES]:
        strategy.train(experience)
        stable[experience.current_experience] = int((model.body[1].unit_state == STABLE).sum())
    tensorboard.writer.flush()
    events = EventAccumulator(str(folder / "tb"))
    events.Reload()
    return events, folder / "nispa_state.csv", stable


def test_tensorboard_gets_one_curve_per_metric_and_layer(logged_run):
    events, _, stable = logged_run
    tags = [tag for tag in events.Tags()["scalars"] if tag.startswith("NISPA_")]
    assert set(tags) == EXPECTED_TAGS
    assert not [tag for tag in tags if "Exp0" in tag]
    for tag in tags:
        assert [e.step for e in events.Scalars(tag)] == [1, 2, 3], tag
    curve = [e.value for e in events.Scalars(f"NISPA_stable/{PREFIX}/body.1")]
    assert curve == [stable[0], stable[1], stable[2]]
    assert curve == sorted(curve) and curve[0] > 0  # stable units only accumulate


def test_csv_rows_say_experience_and_layer(logged_run):
    _, path, stable = logged_run
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["metric", "experience", "layer", "value", "x"]
    assert {(row["metric"], row["layer"]) for row in rows} == {
        (f"NISPA_{key}", layer) for key in PER_LAYER for layer in LAYERS} | {
        (f"NISPA_{key}", "") for key in PER_EXPERIENCE}
    body1 = [row for row in rows if row["metric"] == "NISPA_stable" and row["layer"] == "body.1"]
    assert [(int(r["experience"]), int(r["x"]), int(r["value"])) for r in body1] == [
        (e, e + 1, stable[e]) for e in range(N_EXPERIENCES)]
    phases = [row for row in rows if row["metric"] == "NISPA_phases"]
    assert [int(r["experience"]) for r in phases] == [0, 1, 2]
    assert all(int(r["value"]) == 2 for r in phases)
