"""ComfyUI entry point of the ReSyncer node pack.

ComfyUI imports this folder as a package; everything here is relative so our `nodes/`
folder never shadows ComfyUI's own top-level `nodes` module.
"""

from .nodes import CORE_STAND_INS, NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["CORE_STAND_INS", "NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
