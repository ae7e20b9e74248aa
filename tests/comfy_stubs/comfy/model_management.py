"""Stand-in for comfy.model_management: interrupts, devices and cache release."""

from __future__ import annotations

import threading

import torch

interrupt_processing_mutex = threading.RLock()
interrupt_processing = False
EMPTY_CACHE_CALLS = 0


class InterruptProcessingException(Exception):
    pass


def interrupt_current_processing(value=True):
    global interrupt_processing
    with interrupt_processing_mutex:
        interrupt_processing = value


def processing_interrupted():
    with interrupt_processing_mutex:
        return interrupt_processing


def throw_exception_if_processing_interrupted():
    global interrupt_processing
    with interrupt_processing_mutex:
        if interrupt_processing:
            interrupt_processing = False
            raise InterruptProcessingException()


def get_torch_device():
    return torch.device("cpu")


def unet_offload_device():
    return torch.device("cpu")


def soft_empty_cache(force=False):
    global EMPTY_CACHE_CALLS
    EMPTY_CACHE_CALLS += 1
