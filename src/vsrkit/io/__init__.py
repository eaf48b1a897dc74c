"""Reading and writing videos and image sequences (PyAV): uint8/uint16 frames in and out."""

from vsrkit.io.reader import Frame, VideoInfo, VideoReader, probe
from vsrkit.io.writer import VideoWriter, is_image_folder_output, output_kind

__all__ = ["Frame", "VideoInfo", "VideoReader", "VideoWriter", "is_image_folder_output", "output_kind", "probe"]
