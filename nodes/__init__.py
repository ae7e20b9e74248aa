"""ReSyncer ComfyUI nodes: thin adapters from sockets to `resyncer_core` calls."""

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
