"""Stand-in for ComfyUI's `comfy` package (only utils and model_management)."""
