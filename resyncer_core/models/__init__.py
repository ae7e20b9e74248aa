"""Networks, one per file, and their checkpoint I/O (see checkpoint.py and registry.py)."""
