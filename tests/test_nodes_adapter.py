"""nodes/comfy_adapter.py: every ComfyUI service with ComfyUI (stand-ins) and without it."""

from __future__ import annotations

import shutil

import pytest
import torch
from comfy_stubs.harness import install_comfy_stubs, load_pack_as_comfyui, tiny_models

from resyncer_core.errors import ResyncerInputError
from resyncer_core.graph import context


@pytest.fixture(scope="module")
def adapter():
    return load_pack_as_comfyui().nodes.comfy_adapter


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    monkeypatch.delenv("RESYNCER_MODELS", raising=False)
    context.clear_interrupt()
    with context.scoped(models_dir=None, output_dir=None, temp_dir=None, input_dir=None, device=None,
                        progress_listener=None, current_node=None):
        yield
    context.clear_interrupt()


def test_models_come_from_the_runner_folder_then_the_environment(adapter, monkeypatch, tmp_path):
    models = tiny_models()
    assert not adapter.in_comfyui()
    assert adapter.list_checkpoints("generator") == ["generator.safetensors (shipped)"]
    assert adapter.list_wav2vec2_models() == ["whisper (shipped)", "mel"]
    with context.scoped(models_dir=models):
        assert adapter.list_checkpoints("generator") == ["generator.safetensors", "generator.safetensors (shipped)"]
        # The folder's own first, then the shipped ones.
        assert adapter.list_checkpoints("syncformer") == ["syncformer.safetensors", "syncformer.safetensors (shipped)"]
        assert "vgg19.safetensors" in adapter.list_checkpoints()
        assert adapter.list_wav2vec2_models() == ["wav2vec2", "whisper (shipped)", "mel"]
        assert adapter.resolve_model("wav2vec2", "wav2vec2") == models / "wav2vec2"
    monkeypatch.setenv("RESYNCER_MODELS", str(models))
    assert adapter.resolve_model("resyncer", "generator.safetensors") == models / "generator.safetensors"
    with pytest.raises(ResyncerInputError, match=r"model 'other.safetensors' was not found in .*ending in \(shipped\)"):
        adapter.resolve_model("resyncer", "other.safetensors")


def test_models_come_from_comfyui_folders_when_present(adapter, monkeypatch, tmp_path):
    stubs = install_comfy_stubs(monkeypatch, tmp_path)
    assert adapter.in_comfyui()
    adapter.register_model_folders()
    assert stubs["folder_paths"].get_folder_paths("resyncer") == [str(tmp_path / "models" / "resyncer")]
    models = tiny_models()
    (tmp_path / "models" / "resyncer" / "sub").mkdir(parents=True)
    shutil.copy(models / "generator.safetensors", tmp_path / "models" / "resyncer" / "sub" / "mine.safetensors")
    shutil.copy(models / "syncformer.safetensors", tmp_path / "models" / "resyncer" / "syncformer.safetensors")
    shutil.copytree(models / "wav2vec2", tmp_path / "models" / "wav2vec2" / "tiny-w2v")
    (tmp_path / "models" / "resyncer" / "notes.txt").write_text("not a model")
    assert adapter.list_checkpoints("generator") == ["sub/mine.safetensors", "generator.safetensors (shipped)"]
    assert adapter.list_checkpoints("syncformer") == ["syncformer.safetensors", "syncformer.safetensors (shipped)"]
    assert adapter.list_wav2vec2_models() == ["tiny-w2v", "whisper (shipped)", "mel"]
    pack = load_pack_as_comfyui()
    combo = pack.nodes.ALL_NODE_CLASSES["ReSyncerLoadGenerator"].INPUT_TYPES()["required"]["model"][0]
    assert combo == ["sub/mine.safetensors", "generator.safetensors (shipped)"]
    loaded = pack.nodes.ALL_NODE_CLASSES["ReSyncerLoadGenerator"]().load("sub/mine.safetensors", "auto")[0]
    assert loaded.kind == "generator" and next(loaded.model.parameters()).device.type == "cpu"
    assert adapter.output_directory() == tmp_path / "output" and adapter.temp_directory() == tmp_path / "temp"


def test_progress_goes_to_comfyui_or_to_the_runner(adapter, monkeypatch, tmp_path):
    heard = []
    with context.scoped(progress_listener=lambda value, total, node: heard.append((value, total, node)),
                        current_node="7"):
        progress = adapter.Progress(4)
        progress.update(1)
        progress.update_absolute(9)  # clamped to the total
    assert heard == [(1, 4, "7"), (4, 4, "7")]
    stubs = install_comfy_stubs(monkeypatch, tmp_path)
    progress = adapter.Progress(3, node_id="5")
    progress.update(2)
    assert stubs["comfy.utils"].UPDATES == [(2, 3, "5")]
    stage = adapter.StageProgress("5")
    stage.progress("generator", 1, 2)
    stage.progress("blend", 1, 1)
    assert stubs["comfy.utils"].UPDATES[-2:] == [(1, 2, "5"), (1, 1, "5")]


def test_interrupts_raise_the_hosts_exception(adapter, monkeypatch, tmp_path):
    adapter.check_interrupt()  # nothing asked: no exception
    context.request_interrupt()
    with pytest.raises(context.ProcessingInterrupted):
        adapter.check_interrupt()
    context.clear_interrupt()
    stubs = install_comfy_stubs(monkeypatch, tmp_path)
    stubs["comfy.model_management"].interrupt_current_processing(True)
    assert adapter.interrupt_requested()
    with pytest.raises(stubs["comfy.model_management"].InterruptProcessingException):
        adapter.StageProgress().should_cancel()


def test_devices_and_memory(adapter, monkeypatch, tmp_path):
    assert adapter.torch_device("cpu") == torch.device("cpu")
    with context.scoped(device="cpu"):
        assert adapter.torch_device("auto") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ResyncerInputError, match="CUDA is not available"):
            adapter.torch_device("cuda")
    stubs = install_comfy_stubs(monkeypatch, tmp_path)
    assert adapter.torch_device("auto") == torch.device("cpu")
    cache = adapter.ModelCache(capacity=2)
    loads = []
    for key in ("a", "b", "a", "c", "b"):
        cache.get((key,), lambda key=key: loads.append(key) or key)
    assert loads == ["a", "b", "c", "b"] and len(cache) == 2
    cache.unload_all()
    assert len(cache) == 0 and stubs["comfy.model_management"].EMPTY_CACHE_CALLS == 1
    module = torch.nn.Linear(2, 2)
    with adapter.on_device(module, device="cpu") as device:
        assert device == torch.device("cpu")


def test_output_paths_and_previews(adapter, tmp_path):
    with context.scoped(output_dir=tmp_path / "out", temp_dir=tmp_path / "tmp"):
        first, entry = adapter.output_path("ReSyncer/clip", ".mp4")
        assert first == tmp_path / "out" / "ReSyncer" / "clip_00001_.mp4"
        assert entry == {"filename": "clip_00001_.mp4", "subfolder": "ReSyncer", "type": "output"}
        first.write_bytes(b"x")
        assert adapter.output_path("ReSyncer/clip", ".mp4")[0].name == "clip_00002_.mp4"
        with pytest.raises(ResyncerInputError, match="outside the output folder"):
            adapter.output_path("../escape", ".mp4")
        entries = adapter.save_preview(torch.rand(10, 16, 16, 3), "check")
        assert len(entries) == 1 and entries[0]["type"] == "temp"
        from PIL import Image

        with Image.open(tmp_path / "tmp" / entries[0]["filename"]) as sheet:
            assert sheet.size == (64, 32)  # 8 frames as 4 columns × 2 rows
        assert adapter.save_preview(torch.zeros(0, 4, 4, 3)) == []
    with context.scoped(input_dir=tmp_path):
        (tmp_path / "clip.mp4").write_bytes(b"")
        assert adapter.resolve_input_path("clip.mp4") == tmp_path / "clip.mp4"
        with pytest.raises(ResyncerInputError, match="no file was given"):
            adapter.resolve_input_path("  ")
