"""Whisper encoder: the CTranslate2 / Hugging Face converter (tools/convert_whisper_ctranslate2.py)
on tiny random models written in those layouts, our module against transformers' WhisperEncoder,
and the shipped tiny.en encoder's frame grid and window stitching."""

import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from resyncer_core.audio import frame_count_for, load_audio_encoder
from resyncer_core.audio.whisper_encoder import WhisperAudioEncoder
from resyncer_core.errors import ResyncerInputError
from resyncer_core.models.checkpoint import load_checkpoint
from resyncer_core.models.whisper_encoder import WhisperAudioTransformer, WhisperEncoderConfig
from resyncer_core.synth.speech import synthetic_speech
from resyncer_core.weights import WHISPER_ENCODER_PATH

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import convert_whisper_ctranslate2 as converter  # noqa: E402

TINY = WhisperEncoderConfig(n_mels=8, d_model=16, n_layers=2, n_heads=2, ffn_dim=32, max_positions=30)
_CT2_DTYPE_IDS = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.float16): 4}


def _random_encoder(config=TINY) -> WhisperAudioTransformer:
    """Random weights that float16 holds exactly, so a float16 file round-trips bit for bit."""
    torch.manual_seed(0)
    model = WhisperAudioTransformer(config)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.copy_(torch.randn_like(tensor).mul(0.3).half().float())
    return model.eval()


def _ctranslate2_variables(model: WhisperAudioTransformer, dtype, quantize_linear: bool) -> dict[str, np.ndarray]:
    """The variables CTranslate2's WhisperSpec holds for this encoder (a decoder stub too)."""
    state = {name: tensor.numpy() for name, tensor in model.state_dict().items()}
    variables = {"encoder/num_heads": np.array(model.config.n_heads, dtype=np.int16),
                 "decoder/embeddings/weight": np.ones((5, 4), dtype=dtype)}
    for source, target in converter._CT2_TOP_NAMES.items():
        variables[source] = state[target].astype(dtype)

    def linear(name: str, weight: np.ndarray, bias: np.ndarray) -> None:
        if quantize_linear:
            scale = 127.0 / np.abs(weight).max(axis=1)
            variables[name + "/weight"] = np.rint(weight * scale[:, None]).astype(np.int8)
            variables[name + "/weight_scale"] = scale.astype(np.float32)
        else:
            variables[name + "/weight"] = weight.astype(dtype)
        variables[name + "/bias"] = bias.astype(dtype)

    for index in range(model.config.n_layers):
        prefix, layer = f"encoder/layer_{index}/", f"layers.{index}."
        for source, target in converter._CT2_LAYER_NAMES.items():
            if "/linear_" not in source:
                variables[prefix + source] = state[layer + target].astype(dtype)
        attention = layer + "self_attn."
        fused_weight = np.concatenate([state[attention + p + "_proj.weight"] for p in "qkv"])
        zero_key_bias = np.zeros(model.config.d_model, dtype=np.float32)
        fused_bias = np.concatenate([state[attention + "q_proj.bias"], zero_key_bias, state[attention + "v_proj.bias"]])
        linear(prefix + "self_attention/linear_0", fused_weight, fused_bias)
        linear(prefix + "self_attention/linear_1", state[attention + "out_proj.weight"], state[attention + "out_proj.bias"])
        linear(prefix + "ffn/linear_0", state[layer + "fc1.weight"], state[layer + "fc1.bias"])
        linear(prefix + "ffn/linear_1", state[layer + "fc2.weight"], state[layer + "fc2.bias"])
    return variables


def _write_ctranslate2_model(path: Path, variables: dict[str, np.ndarray], aliases: dict[str, str]) -> Path:
    """model.bin as ctranslate2.specs.model_spec.ModelSpec._serialize writes it (binary version 6)."""
    def string(text: str) -> bytes:
        encoded = text.encode("utf-8")
        return struct.pack("<H", len(encoded) + 1) + encoded + b"\0"

    chunks = [struct.pack("<I", 6), string("WhisperSpec"), struct.pack("<II", 3, len(variables))]
    for name, value in sorted(variables.items()):
        value = np.asarray(value)
        chunks += [string(name), struct.pack("<B", value.ndim), *(struct.pack("<I", d) for d in value.shape),
                   struct.pack("<BI", _CT2_DTYPE_IDS[value.dtype], value.nbytes), value.tobytes()]
    chunks.append(struct.pack("<I", len(aliases)))
    chunks += [string(alias) + string(target) for alias, target in aliases.items()]
    path.write_bytes(b"".join(chunks))
    return path


def _log_mel(config=TINY, batch=2):
    return torch.randn(batch, config.n_mels, config.max_input_steps, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("dtype, quantize_linear, tolerance",
                         [(np.float16, False, 1e-6), (np.float32, False, 1e-6), (np.float32, True, 0.05)])
def test_converter_round_trips_a_ctranslate2_whisper(tmp_path, dtype, quantize_linear, tolerance):
    model = _random_encoder()
    model_bin = _write_ctranslate2_model(tmp_path / "model.bin", _ctranslate2_variables(model, dtype, quantize_linear),
                                         aliases={"decoder/projection/weight": "decoder/embeddings/weight"})
    output = tmp_path / "encoder.safetensors"
    assert converter.main([str(tmp_path), "-o", str(output), "--dtype", "float32"]) == 0
    converted, config = load_checkpoint(output, kind="whisper_encoder")
    assert config == TINY
    log_mel = _log_mel()
    with torch.no_grad():
        expected, actual = model(log_mel), converted(log_mel)
    assert (actual - expected).abs().max().item() <= tolerance * expected.abs().max().item()
    assert model_bin.is_file()


def test_converter_reads_a_hugging_face_whisper_folder(tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import save_file

    model = _random_encoder()
    tensors = {f"model.encoder.{name}": tensor.numpy().astype(np.float16) for name, tensor in model.state_dict().items()}
    tensors["model.decoder.embed_tokens.weight"] = np.zeros((5, TINY.d_model), dtype=np.float16)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "whisper", "num_mel_bins": TINY.n_mels, "d_model": TINY.d_model, "encoder_layers": TINY.n_layers,
        "encoder_attention_heads": TINY.n_heads, "encoder_ffn_dim": TINY.ffn_dim, "max_source_positions": TINY.max_positions}))
    output = tmp_path / "encoder.safetensors"
    assert converter.main([str(tmp_path), "-o", str(output)]) == 0
    with safe_open(str(output), framework="pt") as stored:
        assert stored.get_tensor("conv1.weight").dtype == torch.float16  # float16 by default
    converted, _ = load_checkpoint(output, kind="whisper_encoder")
    log_mel = _log_mel()
    with torch.no_grad():
        torch.testing.assert_close(converted(log_mel), model(log_mel))


def test_converter_refuses_other_files(tmp_path, capsys):
    (tmp_path / "model.bin").write_bytes(struct.pack("<I", 2) + b"junk")
    assert converter.main([str(tmp_path / "model.bin"), "-o", str(tmp_path / "x.safetensors")]) == 2
    assert "binary version 2" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()


def test_module_matches_transformers_whisper_encoder():
    transformers_whisper = pytest.importorskip("transformers.models.whisper.modeling_whisper")
    from transformers import WhisperConfig

    model = _random_encoder()
    reference = transformers_whisper.WhisperEncoder(WhisperConfig(
        num_mel_bins=TINY.n_mels, d_model=TINY.d_model, encoder_layers=TINY.n_layers,
        encoder_attention_heads=TINY.n_heads, encoder_ffn_dim=TINY.ffn_dim, max_source_positions=TINY.max_positions,
        attn_implementation="eager")).eval()
    reference.load_state_dict(model.state_dict(), strict=True)
    log_mel = _log_mel()
    with torch.no_grad():
        torch.testing.assert_close(model(log_mel), reference(log_mel).last_hidden_state, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def shipped():
    return load_audio_encoder("whisper")


def test_shipped_encoder_is_whisper_tiny(shipped):
    assert isinstance(shipped, WhisperAudioEncoder) and not shipped.training
    assert shipped.feature_dim == 384 and shipped.model.config == WhisperEncoderConfig()
    assert WHISPER_ENCODER_PATH.stat().st_size < 20 * 2**20  # float16
    assert (WHISPER_ENCODER_PATH.parent / "NOTICE").is_file()


@pytest.mark.parametrize("fps, num_samples", [(24, 16000 * 3 + 7), (25, 16000 * 2 + 1), (30, 16000 * 5 // 3)])
def test_shipped_encoder_gives_one_vector_per_frame(shipped, fps, num_samples):
    audio = synthetic_speech(num_samples / 16000 + 0.1, seed=fps)[:num_samples]
    features = shipped.encode(audio, fps)
    assert features.shape == (frame_count_for(num_samples, fps), 384)
    assert torch.isfinite(features).all()


def test_shipped_encoder_stitches_long_audio_without_seams(shipped):
    """35 s take two 30 s Whisper windows; the frame-to-frame change across the seam (frame 500)
    must be an ordinary one. (Raw Whisper features cut at the seam gave ~1.0 there against a
    95th percentile of ~0.66; with the positional baseline removed and the cross-fade, ~0.58
    against 0.86.)"""
    fps = 25
    features = shipped.encode(synthetic_speech(35.0, seed=3), fps)
    assert features.shape == (frame_count_for(35 * 16000, fps), 384)
    steps = (features[1:] - features[:-1]).norm(dim=-1) / features[1:].norm(dim=-1)
    seam = round(shipped.window.window_seconds * fps) - 1
    assert steps[seam] <= torch.quantile(steps, 0.95)


def test_silence_is_the_positional_baseline(shipped):
    """Features are Whisper's minus a silent window's at the same positions: silence gives 0."""
    assert shipped.subtract_silence
    torch.testing.assert_close(shipped.encode(np.zeros(16000, dtype=np.float32), 25), torch.zeros(25, 384))


def test_whisper_windows_must_fit_thirty_seconds(shipped):
    from resyncer_core.audio import EncodingWindow

    with pytest.raises(ResyncerInputError, match="30 s"):
        WhisperAudioEncoder(shipped.model, window=EncodingWindow(window_seconds=25.0, context_seconds=5.0))
