"""Video files in and out: probing, chunked RGB decoding and atomic H.264 writing (PyAV)."""

from .frame_rate import as_frame_rate
from .reader import VideoInfo, iter_frames, probe_video, read_frames
from .writer import VideoWriter

__all__ = ["VideoInfo", "VideoWriter", "as_frame_rate", "iter_frames", "probe_video", "read_frames"]
