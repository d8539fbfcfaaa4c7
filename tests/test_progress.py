"""Progress lines of a run: speed and ETA exclude the first block (compilation)."""

from __future__ import annotations

import io

import pytest

from meshfield import simulation


def test_speed_and_eta_are_measured_after_the_first_block(monkeypatch):
    clock = iter([0.0, 120.0, 120.0, 130.0, 140.0])  # start, mark, 1st line, 2nd line, final
    monkeypatch.setattr(simulation.time, "perf_counter", lambda: next(clock))
    out = io.StringIO()
    progress = simulation._Progress(t_end=2000.0, interval=5.0, enabled=True, stream=out)
    # the first block (1 ms) took 120 s: compilation
    progress.mark(1.0)
    progress(1.0)
    progress(501.0)  # 500 ms in 10 s after the mark: 50 ms/s, 1499 ms left: 29.98 s
    progress(1001.0, force=True)
    first, second, final = out.getvalue().splitlines()
    assert "speed         - ms/s  ETA        - s" in first
    assert "wall    120.0 s" in first
    assert "speed      50.0 ms/s  ETA     30.0 s" in second
    assert "speed      50.0 ms/s  ETA     20.0 s" in final  # 1000 ms in 20 s, 999 ms left


def test_without_a_mark_the_speed_counts_from_the_start(monkeypatch):
    clock = iter([0.0, 10.0])
    monkeypatch.setattr(simulation.time, "perf_counter", lambda: next(clock))
    out = io.StringIO()
    progress = simulation._Progress(t_end=100.0, interval=5.0, enabled=True, stream=out, t_start=20.0)
    progress(60.0)
    assert "speed       4.0 ms/s  ETA     10.0 s" in out.getvalue()
    # the percentage is of this run's span, 20 .. 100 ms (a restart from 20 ms
    # showed 60 %, the share since t = 0, where half its work was done)
    assert "t =       60.0 / 100.0 ms ( 50.0 %)" in out.getvalue()


@pytest.mark.parametrize("enabled", [False])
def test_quiet_progress_prints_nothing(enabled):
    out = io.StringIO()
    progress = simulation._Progress(t_end=100.0, interval=0.0, enabled=enabled, stream=out)
    progress.mark(1.0)
    progress(50.0, force=True)
    assert out.getvalue() == ""
