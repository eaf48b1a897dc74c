"""How closely chunked and tiled inference agrees with whole-clip, whole-frame inference.

Prints PSNR (dB, float frames in [0, 1]) of BasicVSR (REDS4 weights) on real frames for several temporal
chunk overlaps and tile overlaps. Measured on a 2-core CPU (carphone 60 frames, bikes 8 frames):
  two-pass streaming: inf dB (bit-identical); overlapped chunks 24/0..8: 35.5-37.1 dB, because
  BasicVSR's recurrent state remembers far back (32 frames of warm-up: still ~32-38 dB), which is why
  the engine streams bidirectional recurrent models in two exact passes instead;
  tiles 64 with overlap 8/16/24: 53.9/54.4/55.8 dB -> DEFAULT_TILE_OVERLAP = 24.

    python benchmarks/chunk_tile_agreement.py [--clip PATH] [--frames 60]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import vsrkit
from vsrkit import io as video
from vsrkit.data.degrade import bi_downscale
from vsrkit.infer import DEFAULT_CHUNK, make_config, upscale_tensor
from vsrkit.eval.metrics import psnr_float

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips"


class Plain(torch.nn.Module):
    """The model without its two-pass methods: the engine falls back to overlapped chunks."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.scale, self.temporal, self.channels = model.scale, model.temporal, model.channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def lr_frames(path: Path, n: int, factor: int) -> torch.Tensor:
    out = []
    with video.VideoReader(path) as r:
        for k, f in enumerate(r):
            if k >= n:
                break
            img = f.image[..., :3]
            h, w = img.shape[0] // factor * factor, img.shape[1] // factor * factor
            out.append(torch.from_numpy(bi_downscale(img[:h, :w], factor)).permute(2, 0, 1).float() / 255)
    return torch.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="basicvsr-reds4")
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    model = vsrkit.load_model(args.model)

    x = lr_frames(SHARED / "carphone_pristine.mp4", args.frames, 4)
    print(f"temporal chunks: {tuple(x.shape)} frames from carphone_pristine.mp4 (BI x4)")
    whole = upscale_tensor(model, x, make_config("cpu", chunk=10**6, chunk_overlap=0))
    y = upscale_tensor(model, x, make_config("cpu"))
    print(f"  two-pass streaming (default, blocks of {DEFAULT_CHUNK}): PSNR {psnr_float(y, whole):6.2f} dB, "
          f"max abs difference {(y - whole).abs().max().item():.2g}")
    print("  overlapped chunks, keeping centres (the generic path for sequence models):")
    plain = Plain(model)
    for chunk, ov in [(24, 0), (24, 2), (24, 4), (24, 6), (24, 8), (12, 6)]:
        y = upscale_tensor(plain, x, make_config("cpu", chunk=chunk, chunk_overlap=ov))
        worst = min(psnr_float(y[i], whole[i]) for i in range(len(y)))
        print(f"  chunk {chunk:3d} overlap {ov:2d}: PSNR {psnr_float(y, whole):6.2f} dB (worst frame {worst:6.2f} dB)")

    x = lr_frames(SHARED / "bikes.mp4", 8, 4)
    print(f"spatial tiles: {tuple(x.shape)} frames from bikes.mp4 (BI x4)")
    whole = upscale_tensor(model, x, make_config("cpu"))
    for tile, ov in [(64, 8), (64, 16), (64, 24), (96, 32)]:
        y = upscale_tensor(model, x, make_config("cpu", tile=tile, tile_overlap=ov))
        print(f"  tile {tile:3d} overlap {ov:2d}: PSNR {psnr_float(y, whole):6.2f} dB")


if __name__ == "__main__":
    main()
