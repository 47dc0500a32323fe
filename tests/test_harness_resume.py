"""A sweep's NISPA run killed between experiences continues where it stopped
(``avalanche_nispa.harness.resume``): the resumed record equals the uninterrupted one,
whatever process or executor runs each segment, and nothing is resumed that should not be."""

from __future__ import annotations

import json

import pytest

from avalanche_nispa.harness import configs, planning, runner
from avalanche_nispa.harness.executors.worker import WorkerTask, run_task
from avalanche_nispa.harness.runner import EXECUTION_FIELDS


class Killed(Exception):
    """The process 'dies' (a session ends) when a training call starts."""


@pytest.fixture(scope="module")
def cfg():
    """The bundled digits (5 experiences), NISPA cut to 2 phases of 1 epoch on 16 units."""
    base = configs.get_config("split_digits")
    return planning.apply_overrides(base, [
        ("backbone.hidden_sizes", (16, 16)), ("nispa.phase_epochs", 1), ("nispa.max_phases", 2)])


@pytest.fixture(scope="module")
def benchmark(cfg):
    return runner.load_benchmark(cfg, 1)


@pytest.fixture(autouse=True)
def one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _plan(cfg, *grid):
    if not grid:
        return planning.make_plans(cfg, ["nispa"], [1])[0]
    (plan,) = planning.make_plans(cfg, [], [1], list(grid))
    return plan


def _kill_at(monkeypatch, experience: int) -> None:
    """The next run built dies when its training call of ``experience`` starts."""
    build = runner.registry.build_strategy

    def dying(*args, **kwargs):
        built = build(*args, **kwargs)
        train = built.strategy.train

        def train_or_die(stream_experience, *a, **k):
            if stream_experience.current_experience >= experience:
                raise Killed()
            return train(stream_experience, *a, **k)

        built.strategy.train = train_or_die
        return built

    monkeypatch.setattr(runner.registry, "build_strategy", dying)


def _same(resumed, uninterrupted):
    return ({k: v for k, v in resumed.items() if k not in EXECUTION_FIELDS}
            == {k: v for k, v in uninterrupted.items() if k not in EXECUTION_FIELDS})


VARIANTS = {
    "paper": (),
    "unfreezing": (("nispa.unfreeze_below", "0.9"), ("nispa.unfreeze_bound", "0.2")),
    "neurogenesis": (("nispa.neurogenesis_below", "0.9"), ("nispa.neurogenesis_bound", "0.2")),
    "rigl": (("nispa.growth_rule", "rigl"),),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_run_killed_twice_resumes_to_the_uninterrupted_record_and_log(
        variant, cfg, benchmark, monkeypatch, tmp_path):
    plan = _plan(cfg, *VARIANTS[variant])
    expected = runner.run_single(plan, cfg, benchmark, log_path=tmp_path / "whole.log")
    partial, log = tmp_path / "partial", tmp_path / "resumed.log"
    saved_walls = []
    for dies_at in (2, 4):
        _kill_at(monkeypatch, dies_at)
        with pytest.raises(Killed):
            runner.run_single(plan, cfg, benchmark, log_path=log, partial_dir=partial)
        monkeypatch.undo()
        state = json.loads((partial / f"{plan.stem}.json").read_text())
        assert state["done"] == dies_at and len(state["matrix"]) == dies_at
        assert sorted(p.name for p in partial.glob("*.ckpt")) == [f"{plan.stem}.exp{dies_at}.ckpt"]
        saved_walls.append(state["wall_time_s"])
    resumed = runner.run_single(plan, cfg, benchmark, log_path=log, partial_dir=partial)
    assert resumed["segments"] == 3 and "segments" not in expected
    assert _same(resumed, expected)
    assert log.read_text() == (tmp_path / "whole.log").read_text()
    assert 0 < saved_walls[0] < saved_walls[1] < resumed["wall_time_s"]
    assert resumed["train_time_s"] <= resumed["wall_time_s"]
    assert list(partial.iterdir()) == []  # finished: nothing left to resume


def test_a_run_resumes_in_a_worker_task_as_in_the_sequential_sweep(
        cfg, benchmark, monkeypatch, tmp_path):
    plan = _plan(cfg)
    expected = runner.run_single(plan, cfg, benchmark, log_path=tmp_path / "whole.log")
    partial = tmp_path / "partial"
    _kill_at(monkeypatch, 3)
    with pytest.raises(Killed):
        run_task(WorkerTask(plan, cfg, threads=1, partial_dir=str(partial)))
    monkeypatch.undo()
    reply = run_task(WorkerTask(plan, cfg, threads=1, partial_dir=str(partial)))
    assert reply.record["segments"] == 2 and _same(reply.record, expected)
    assert reply.log_text == (tmp_path / "whole.log").read_text()


def _sweep(cfg, plan, benchmark, results, **kwargs):
    return runner.run_sweep(cfg, [plan], results_dir=results, progress=False,
                            benchmark_factory=lambda seed: benchmark, **kwargs)


def test_a_sweep_resumes_its_unfinished_run_and_rerun_starts_it_over(
        cfg, benchmark, monkeypatch, tmp_path):
    plan, results = _plan(cfg), tmp_path / "results"
    _kill_at(monkeypatch, 2)
    with pytest.raises(Killed):
        _sweep(cfg, plan, benchmark, results)
    monkeypatch.undo()
    assert not (results / "runs").exists() and (results / "partial" / f"{plan.stem}.json").exists()
    (record,) = _sweep(cfg, plan, benchmark, results).results
    assert record["segments"] == 2
    assert json.loads((results / "runs" / f"{plan.stem}.json").read_text()) == record
    _kill_at(monkeypatch, 2)
    with pytest.raises(Killed):
        _sweep(cfg, plan, benchmark, results, rerun=True)
    monkeypatch.undo()
    (again,) = _sweep(cfg, plan, benchmark, results, rerun=True).results
    assert "segments" not in again and _same(again, record)


def test_an_unfinished_run_of_other_settings_is_not_resumed(cfg, benchmark, monkeypatch, tmp_path):
    other, plan = _plan(cfg, ("nispa.lr", "0.003")), _plan(cfg)
    partial = tmp_path / "partial"
    _kill_at(monkeypatch, 3)
    with pytest.raises(Killed):
        runner.run_single(other, cfg, benchmark, partial_dir=partial)
    monkeypatch.undo()
    # the same file stem, other settings: a run of a changed configuration
    other_state = json.loads((partial / f"{other.stem}.json").read_text())
    (partial / f"{plan.stem}.json").write_text(json.dumps(other_state))
    (partial / f"{plan.stem}.exp3.ckpt").write_bytes(
        (partial / f"{other.stem}.exp3.ckpt").read_bytes())
    expected = runner.run_single(plan, cfg, benchmark)
    record = runner.run_single(plan, cfg, benchmark, partial_dir=partial)
    assert "segments" not in record and _same(record, expected)
    assert not (partial / f"{plan.stem}.json").exists()
    assert not list(partial.glob(f"{plan.stem}.exp*"))


def test_an_inconsistent_unfinished_run_is_refused_naming_the_files(
        cfg, benchmark, monkeypatch, tmp_path):
    plan, partial = _plan(cfg), tmp_path / "partial"
    _kill_at(monkeypatch, 3)
    with pytest.raises(Killed):
        runner.run_single(plan, cfg, benchmark, partial_dir=partial)
    monkeypatch.undo()
    state_path = partial / f"{plan.stem}.json"
    state = json.loads(state_path.read_text())
    state["done"] = 2  # the record of an older experience beside a newer checkpoint
    state_path.write_text(json.dumps(state))
    with pytest.raises(RuntimeError, match=rf"{plan.stem}\.exp3\.ckpt continues at experience 3"):
        runner.run_single(plan, cfg, benchmark, partial_dir=partial)


def test_baselines_are_not_saved_mid_run(cfg, benchmark, tmp_path):
    (plan,) = planning.make_plans(cfg, ["naive"], [1])
    runner.run_single(plan, cfg, benchmark, partial_dir=tmp_path / "partial")
    assert not (tmp_path / "partial").exists()
