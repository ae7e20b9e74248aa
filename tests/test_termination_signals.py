"""SIGINT (Ctrl-C), SIGTERM (`timeout`, systemd, `docker stop`) and SIGHUP (a closed terminal)
during the generator stop `resyncer` cleanly: no output, no temporary file, one line on stderr,
and the shell's exit status for the signal (130, 143, 129); `run-workflow` likewise, and its
preview folder goes too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _pipeline_media import speech_wav, talking_clip, tiny_models

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")


def _default_sigint() -> None:
    # A shell starts background jobs with SIGINT ignored, and Python then keeps ignoring it;
    # a user's Ctrl-C reaches a foreground process, which this restores.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(argv: list[str], env_extra: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "resyncer_core.cli", *argv], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


def _wait_for(condition, process: subprocess.Popen, what: str, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the command ended ({process.returncode}) before {what}: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen, signum: int) -> tuple[int, str]:
    process.send_signal(signum)
    try:
        _, error = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the command did not stop within 60 s of the signal")
    return process.returncode, error


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    speech = speech_wav(tmp_path_factory.mktemp("signal_speech") / "long.wav", 8.0)
    return tiny_models(tmp_path_factory), talking_clip(tmp_path_factory, 1.2), speech


@pytest.mark.parametrize("signum, status, line", [(signal.SIGINT, 130, "resyncer: interrupted"),
                                                  (signal.SIGTERM, 143, "resyncer: stopped by SIGTERM"),
                                                  (signal.SIGHUP, 129, "resyncer: stopped by SIGHUP")],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_signal_during_the_generator_leaves_no_file(inputs, tmp_path, signum, status, line):
    models, clip, speech = inputs
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    process = _start(["lipsync", "--video", str(clip), "--audio", str(speech), "-o", str(output_dir / "out.mp4"),
                      "--models", str(models), "--batch-size", "1", "--x264-preset", "ultrafast"])
    # The partial file opens as pass 2 starts; a moment later the generator is in its batches.
    _wait_for(lambda: any(output_dir.iterdir()), process, "the output was opened")
    time.sleep(0.5)
    code, error = _stop(process, signum)
    assert code == status, error
    assert error == line + "\n"
    assert list(output_dir.iterdir()) == []


@pytest.mark.parametrize("signum, status, line", [(signal.SIGINT, 130, "resyncer: processing was interrupted"),
                                                  (signal.SIGTERM, 143, "resyncer: stopped by SIGTERM")],
                         ids=["SIGINT", "SIGTERM"])
def test_signal_stops_run_workflow_and_removes_its_previews(inputs, tmp_path, signum, status, line):
    models, clip, speech = inputs
    temp = tmp_path / "tmp"
    temp.mkdir()
    output_dir = tmp_path / "out"
    process = _start(["run-workflow", str(REPO / "api_workflows" / "lipsync_api.json"), "--set", f"Target video.video={clip}",
                      "--set", f"Speech.audio={speech}", "--set", "ReSyncerGenerator.batch_size=1",
                      "--models", str(models), "--output-dir", str(output_dir), "--device", "cpu"],
                     {"TMPDIR": str(temp)})
    # Track Face's preview lands in the run's own temp folder once tracking is done.
    _wait_for(lambda: any(temp.rglob("*.png")), process, "Track Face wrote its preview")
    time.sleep(1.0)
    code, error = _stop(process, signum)
    assert code == status, error
    assert error.startswith(line) and error.count("\n") == 1, error
    assert not output_dir.exists() or not any(path.is_file() for path in output_dir.rglob("*"))
    assert list(temp.iterdir()) == []
