"""Ctrl-C stops a diagnosis even when the code it lands in swallows the KeyboardInterrupt."""

from __future__ import annotations

import contextlib
import os
import signal

import pytest

from analyzer.runner.interrupt import InterruptWatch


def swallowed_sigint() -> None:
    """SIGINT to this process, caught as a careless library would catch it."""
    with contextlib.suppress(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)


def wrapped_sigint() -> None:
    """SIGINT turned into an ordinary exception, as a library wrapping every error would."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
    except KeyboardInterrupt as error:
        raise RuntimeError("compile failed") from error


@pytest.fixture(autouse=True)
def sigint_raises():
    """Python's own SIGINT handler, whatever the test run inherited (a background job starts
    with SIGINT ignored, and so would every test here)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_a_swallowed_interrupt_is_remembered_and_raised_at_the_check() -> None:
    with InterruptWatch() as watch:
        swallowed_sigint()
        assert watch.requested
        with pytest.raises(KeyboardInterrupt):
            watch.check()


def test_no_sigint_no_interrupt() -> None:
    with InterruptWatch() as watch:
        watch.check()
    assert not watch.requested


def test_the_previous_handler_is_back_afterwards() -> None:
    before = signal.getsignal(signal.SIGINT)
    with InterruptWatch():
        assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before


def test_ignored_sigint_stays_ignored() -> None:
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with InterruptWatch() as watch:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert not watch.requested
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize("probe", [swallowed_sigint, wrapped_sigint])
def test_a_diagnosis_stops_after_the_probe_that_swallowed_ctrl_c(probe, tmp_path) -> None:
    from custom_models import make_regressor

    from analyzer.diagnosis import Diagnosis
    from analyzer.runner.run import DiagnosisRun
    from probes.records.benchmark import BenchmarkSettings
    from probes.targets.module import module_target
    from probes.targets.target import CompileSettings

    model, inputs = make_regressor()
    target = module_target(model, inputs)
    diagnosis = Diagnosis(command="test")
    run = DiagnosisRun(
        target,
        CompileSettings(backend="eager"),
        BenchmarkSettings(1, 1, 0),
        diagnosis,
        tmp_path,
    )
    run._explain = probe  # the first probe: Ctrl-C lands in it and is swallowed there
    with pytest.raises(KeyboardInterrupt):
        run.run()
    assert diagnosis.status == "interrupted"
    assert "benchmark" not in diagnosis.probes
