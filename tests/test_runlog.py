"""The run's console and train.log (:class:`gan_bench.runlog.RunLogger`): the bar moves every iteration, lines mode
prints on time as well as every log interval, and train.log holds what the console showed."""
from __future__ import annotations

import time

from gan_bench.runlog import RunLogger, scalars


def test_the_bar_advances_every_iteration_with_an_eta_from_the_start(tmp_path):
    logger = RunLogger(tmp_path, total=100, start=0, progress="bar", log_every=50)
    try:
        for it in range(1, 8):
            logger.tick(it)  # no logging iteration among these
            time.sleep(0.01)
        task = logger._bar.tasks[0]
        assert task.completed == 7 and task.speed is not None and task.time_remaining is not None
    finally:
        logger.close()


def test_lines_mode_prints_on_time_and_train_log_holds_the_console(tmp_path, capsys):
    logger = RunLogger(tmp_path, total=1000, start=0, progress="lines", log_every=500)
    logger.LINE_EVERY_S = 0.0  # every tick is "a while since the last line"
    logger.tick(3)
    logger.step(500, {"g/loss": 0.7, "d/loss": 1.3})
    logger.say("[gan-bench] eval it 500  G raw  fid=12.5  (1.0 s)")
    logger.close()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("[gan-bench] it 3/1000") and "eta" in out[0]
    assert out[1].startswith("[gan-bench] it 500/1000") and "g/loss=0.700  d/loss=1.300" in out[1]
    log = (tmp_path / "train.log").read_text().splitlines()
    assert [line.split("] ", 1)[1] for line in log] == out  # the same lines, each with its time


def test_a_bar_run_still_writes_its_lines_to_train_log(tmp_path, capsys):
    logger = RunLogger(tmp_path, total=100, start=0, progress="bar", log_every=50)
    logger.step(50, {"g/loss": 0.5})
    logger.close()
    assert "[gan-bench] it 50/100" in (tmp_path / "train.log").read_text()
    assert "it 50/100" not in capsys.readouterr().out  # the bar shows it on the console


def test_nothing_constant_by_construction_is_logged():
    import torch

    values = scalars({"agg/weights": torch.tensor([0.25, 0.75]), "d/loss": torch.tensor([1.0, 3.0])})
    assert "agg/weights/mean" not in values and values["agg/weights/1"] == 0.75  # the mean is 1/K always
    assert values["d/loss/mean"] == 2.0


def test_an_evaluation_shows_its_own_progress_on_the_bar(tmp_path):
    logger = RunLogger(tmp_path, total=10, start=0, progress="bar", log_every=5)
    try:
        advance = logger.phase("eval G raw", 400)
        advance(200)
        (task,) = [t for t in logger._bar.tasks if t.description == "eval G raw"]
        assert task.completed == 200 and task.total == 400
        advance(200)  # done: the evaluation's bar goes away, the training bar stays
        assert [t.description for t in logger._bar.tasks] == ["train"]
    finally:
        logger.close()
