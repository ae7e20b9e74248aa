"""ReSyncer core library: audio features, face geometry, models, pipelines and training.

Importing this package loads no model and touches no file or network; everything heavy
happens in the functions and classes the submodules expose.
"""

__version__ = "0.1.0"
