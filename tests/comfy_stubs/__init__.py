"""Test-only stand-ins for ComfyUI modules, and helpers that load the pack as ComfyUI does."""
