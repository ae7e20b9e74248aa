"""Finding and checking Hugging Face-format Wav2Vec2 folders before transformers touches them,
so a wrong folder gets one clear sentence instead of a deep traceback."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import CheckpointError, ResyncerInputError
from .timing import SAMPLE_RATE

_SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json")
_PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"Could not read {path} ({error}); restore the file from the original model.") from None


def check_wav2vec2_folder(folder) -> Path:
    """The folder as a Path once it holds a wav2vec2 config.json and safetensors weights."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"Wav2Vec2 folder {folder} does not exist; pass a folder saved with save_pretrained.")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{folder} has no config.json; pass a Hugging Face-format Wav2Vec2 folder.")
    model_type = _read_json(config_path).get("model_type")
    if model_type != "wav2vec2":
        raise CheckpointError(f"{config_path} describes a '{model_type}' model; pass a Wav2Vec2 model folder.")
    if not any((folder / name).is_file() for name in _SAFETENSORS_FILES):
        if any((folder / name).is_file() for name in _PICKLE_FILES):
            raise CheckpointError(
                f"{folder} holds only pickle weights (pytorch_model.bin), which are not loaded for safety; convert "
                "them once with Wav2Vec2Model.from_pretrained(folder).save_pretrained(folder, safe_serialization=True)."
            )
        raise CheckpointError(f"{folder} has no model.safetensors; put the model's safetensors weights there.")
    return folder


def read_do_normalize(folder: Path) -> bool:
    """Whether the model expects zero-mean unit-variance input (preprocessor_config.json's
    do_normalize). Without the file, True: the released wav2vec2-base/large models expect it."""
    preprocessor_path = Path(folder) / "preprocessor_config.json"
    if not preprocessor_path.is_file():
        return True
    preprocessor = _read_json(preprocessor_path)
    sampling_rate = preprocessor.get("sampling_rate", SAMPLE_RATE)
    if sampling_rate != SAMPLE_RATE:
        raise CheckpointError(
            f"{preprocessor_path} says the model takes {sampling_rate} Hz audio; use a 16 kHz Wav2Vec2 model."
        )
    return bool(preprocessor.get("do_normalize", True))


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and "\\" not in name and not name.startswith(".")


def resolve_wav2vec2_folder(name_or_path, models_dir=None, allow_download: bool = False) -> Path:
    """A local Wav2Vec2 folder for a folder path or a hub id such as "facebook/wav2vec2-base-960h".

    A hub id is looked up as models_dir/<owner>--<name>; with allow_download it is fetched
    there (json + safetensors files only) when missing.
    """
    path = Path(name_or_path)
    if path.is_dir():
        return path
    name = str(name_or_path)
    if not _looks_like_hub_id(name):
        raise ResyncerInputError(f"Wav2Vec2 model {name} is neither a folder nor a hub id; pass a model folder.")
    if models_dir is None:
        raise ResyncerInputError(
            f"Wav2Vec2 model {name} is not a local folder; pass models_dir (e.g. ComfyUI/models/wav2vec2) "
            "or the model's folder."
        )
    local_folder = Path(models_dir) / name.replace("/", "--")
    if (local_folder / "config.json").is_file():
        return local_folder
    if not allow_download:
        raise ResyncerInputError(
            f"Wav2Vec2 model {name} is not in {local_folder}; save the Hugging Face-format folder there "
            "(config.json, model.safetensors, preprocessor_config.json) or allow downloading."
        )
    from huggingface_hub import snapshot_download  # only needed when a download was asked for

    snapshot_download(repo_id=name, local_dir=local_folder, allow_patterns=["*.json", "*.safetensors"])
    return local_folder
