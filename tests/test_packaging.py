"""requirements.txt (what ComfyUI installs into its own environment) stays in step with
pyproject's dependencies, minus torch, which ComfyUI provides and must not be replaced."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _requirements() -> set[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def test_requirements_txt_is_pyproject_without_torch():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert _requirements() == {d for d in dependencies if not d.startswith("torch")}


def test_nothing_pulls_a_cuda_torch_build_or_its_companions():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    everything = list(project["dependencies"]) + sum(project["optional-dependencies"].values(), [])
    assert not [d for d in everything + sorted(_requirements()) if d.split(">")[0].split("=")[0] in {"torchvision", "torchaudio", "mediapipe"}]
