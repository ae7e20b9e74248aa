"""Personalization stage: fine-tune the generator on seconds of the target video (paper §3.2,
A.1), through resyncer_core.train.personalize."""

from __future__ import annotations

import copy
import logging

from . import comfy_adapter as adapter
from .common import (
    FACE_TRACK,
    GENERATOR,
    LoadedModel,
    category,
    image_to_uint8,
    require_handle,
)
from .generator import KIND as GENERATOR_KIND

LOG = logging.getLogger("resyncer.nodes")
NONE = "none"


def trainable_copy(module):
    """A copy of `module` whose parameters and buffers are ordinary tensors: ComfyUI runs nodes
    under torch.inference_mode(), and tensors made there cannot take part in training."""
    import torch

    if module is None:
        return None
    with torch.inference_mode(False):
        module = copy.deepcopy(module)
        for tensor in [*module.parameters(), *module.buffers()]:
            tensor.data = tensor.data.clone()
    return module


def _optional_checkpoint(kind: str, name: str):
    from resyncer_core.models.checkpoint import load_checkpoint

    if name == NONE:
        return None, None
    path = adapter.resolve_model(adapter.RESYNCER_FOLDER, name)
    model = adapter.MODEL_CACHE.get(("checkpoint", kind, adapter.file_key(path)),
                                    lambda: load_checkpoint(path, kind=kind, device=adapter.offload_device())[0])
    return model, path


class ReSyncerPersonalize:
    DESCRIPTION = ("Fine-tunes a copy of the generator on the target video's own frames: stage-2 training on them "
                   "(full-parameter, or StyleSync's W+ offsets), so teeth, skin and lighting match the person. Eight "
                   "frames are kept out and their lower face scored before and after (in the log; a worse result is "
                   "kept with a warning). Optionally saves it to the model folder, recording the face it was tuned "
                   "on so the ReSync Generator picks it for that face.")
    CATEGORY = category("generator")
    RETURN_TYPES = (GENERATOR,)
    RETURN_NAMES = ("generator",)
    FUNCTION = "personalize"
    REQUIRES = ("resyncer_core.train.personalize",)

    @classmethod
    def INPUT_TYPES(cls):
        from resyncer_core.train.personalize import PersonalizeConfig

        defaults = PersonalizeConfig()
        discriminators = [NONE, *adapter.list_checkpoints("discriminator")]
        perceptual = [NONE, *adapter.list_checkpoints("vgg19")]
        return {
            "required": {
                "generator": (GENERATOR, {"tooltip": "The generator to start from (it is copied, never changed)."}),
                "images": ("IMAGE", {"tooltip": "Frames of the target person (a few seconds are enough)."}),
                "face_track": (FACE_TRACK, {"tooltip": "Track of these frames; frames without a face are skipped."}),
                "steps": ("INT", {"default": defaults.steps, "min": 1, "max": 100_000, "step": 1,
                                  "tooltip": "Optimisation steps; an interrupt stops between steps and keeps nothing."}),
                "lr": ("FLOAT", {"default": defaults.lr, "min": 1e-7, "max": 1e-1, "step": 1e-6, "round": False,
                                 "tooltip": "Learning rate (Adam) of generator and discriminator: a tenth of stage "
                                            "2's, as Adam starts without the run's moment estimates."}),
            },
            "optional": {
                "batch_size": ("INT", {"default": 4, "min": 1, "max": 64, "step": 1,
                                       "tooltip": "Crops per optimisation step."}),
                "discriminator": (discriminators, {"default": discriminators[min(1, len(discriminators) - 1)],
                                                   "tooltip": "StyleGAN2 discriminator checkpoint for the adversarial "
                                                              "loss (fine-tuned alongside); none leaves the term out."}),
                "vgg19": (perceptual, {"default": perceptual[min(1, len(perceptual) - 1)],
                                       "tooltip": "VGG19 for the perceptual loss; none or a random-initialised one "
                                                  "(from `resyncer models init`) uses the shipped EfficientNet-Lite0 "
                                                  "feature loss instead."}),
                # No randomize-after-run control: a new seed would re-run the whole fine-tune on every queue.
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1, "step": 1, "control_after_generate": False,
                                 "tooltip": "Seed of the sample and reference-frame draws."}),
                "save_as": ("STRING", {"default": "", "tooltip": "File name to save the personalised generator under in "
                                       "the resyncer model folder (e.g. alice.safetensors); empty keeps it in memory."}),
                "w_plus": ("BOOLEAN", {"default": False,
                                       "tooltip": "StyleSync's W+ option: learn offsets ΔW = MLP(f_f) and tune the "
                                                  "synthesis network (encoder fixed) under an L2 penalty, instead of "
                                                  "full-parameter fine-tuning."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def personalize(self, generator, images, face_track, steps=20, lr=1e-4, batch_size=4, discriminator=NONE,
                    vgg19=NONE, seed=0, save_as="", w_plus=False, unique_id=None):
        import torch

        from resyncer_core.errors import ResyncerInputError
        from resyncer_core.models.checkpoint import is_random_initialised, save_checkpoint
        from resyncer_core.stages.model_files import LossNetwork, load_perceptual_network
        from resyncer_core.train.personalize import PersonalizeConfig, clip_from_frames, personalize_generator

        handle = require_handle(generator, GENERATOR_KIND, "generator")
        if len(images) != len(face_track):
            raise ResyncerInputError(f"Personalize got {len(images)} frames but a {len(face_track)}-frame track; "
                                     "connect the track of these frames")
        config = PersonalizeConfig(steps=int(steps), lr=float(lr), batch_size=int(batch_size), seed=int(seed),
                                   w_plus=bool(w_plus))
        critic, _ = _optional_checkpoint("discriminator", discriminator)
        vgg, vgg_path = _optional_checkpoint("vgg19", vgg19)
        if vgg is not None and is_random_initialised(vgg_path):
            LOG.info("ReSyncer Personalize: %s is random-initialised, using the EfficientNet-Lite0 feature loss",
                     vgg_path.name)
            vgg = None
        perceptual = (LossNetwork(vgg, "VGG19 perceptual loss") if vgg is not None
                      else load_perceptual_network(None, adapter.offload_device()))
        model, critic = trainable_copy(handle.model), trainable_copy(critic)
        perceptual = LossNetwork(trainable_copy(perceptual.network), perceptual.name)
        stage = adapter.StageProgress(unique_id)
        adapter.check_interrupt()
        with torch.inference_mode(False), torch.enable_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            with adapter.on_device(*(m for m in (model, critic, perceptual.network) if m is not None),
                                   device=handle.torch_device()):
                clip = clip_from_frames(image_to_uint8(images[: config.max_frames]),
                                        face_track.slice(0, config.max_frames))
                result = personalize_generator(model, clip, config, discriminator=critic, perceptual=perceptual,
                                               log=LOG.info, callbacks=stage.callbacks())
        model = result.generator.requires_grad_(False)
        source = f"{handle.source} (personalised)"
        if save_as.strip():
            roots = adapter.model_roots(adapter.RESYNCER_FOLDER)
            if not roots:
                raise ResyncerInputError("save_as needs a model folder; run inside ComfyUI or pass --models DIR")
            target = roots[0] / save_as.strip()
            if target.suffix != ".safetensors":
                target = target.with_suffix(".safetensors")
            save_checkpoint(model, model.config, GENERATOR_KIND, target, extra_metadata=result.metadata)
            source = str(target)
        return (LoadedModel(model, handle.device_choice, source, GENERATOR_KIND),)


NODE_CLASSES = {
    "ReSyncerPersonalize": (ReSyncerPersonalize, "Personalize"),
}
