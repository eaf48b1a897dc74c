"""Building blocks shared by several model families: common layers, SpyNet, deformable convolution."""
