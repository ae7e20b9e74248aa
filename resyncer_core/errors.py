"""Errors the library raises for bad input, so front-ends can show one clear line."""


class ResyncerInputError(ValueError):
    """Bad user input (a file, an argument, a checkpoint): the message is one sentence that
    names the input and says what to do. CLI and nodes show it without a traceback."""


class CheckpointError(ResyncerInputError):
    """A checkpoint file is missing, corrupt, of the wrong kind or has mismatching tensors."""
