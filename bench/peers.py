"""What users really run to predict a HuBMAP slide, ported to run hubkit's starter model: the peers of the benches.

Each peer takes the slide's file and one zoo member (the model and its card: scale, tile size,
mean/std, threshold) and returns the slide's 2021 RLE, as its users' kernels do. Only the model is
swapped in; tiling, blending, skipping, precision, upsampling and encoding are the peer's own.

* ``monai``: MONAI's ``sliding_window_inference`` (Gaussian weights, overlap 0.25, 4 windows per
  batch) on the slide read into memory with tifffile and shrunk to model scale (INTER_AREA), fp32;
  then upsampled (bilinear), thresholded and encoded with the common Kaggle RLE encoder.
* ``monai-bf16``: the same with the two switches a MONAI user flips on a CPU: bf16 autocast and
  channels-last.
* ``kaggle-3rd``: the 3rd-place HuBMAP 2021 inference ("Whats goin on", iafoss's tiling), from
  cns-iu/ccf-research-kaggle-2021 ``models/3-Whats goin on/Inference.py``: rasterio windows of
  2048 model px plus a 512 px margin at 1/2 scale, saturation test for empty tiles, batch 2, fp32,
  bilinear upsampling of each tile, a whole-slide int8 mask and its ``rle_encode_less_memory``.
* ``deepflash2``: deepflash2's ``InferenceEnsemble`` (matjesg/deepflash2 ``deepflash2/inference.py``,
  Apache-2.0) with its config defaults: 512 px tiles taken by ``grid_sample`` from the full-resolution
  image at the model's scale, tile shift 0.5, border padding 0.25, Gaussian weights (sigma 1/8),
  a traced model, the uncertainty map, bilinear upsampling; then thresholded and encoded.

No peer runs test-time augmentation here (the benches compare at TTA off, the same work for all).
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
from bench_rle import kaggle_encode  # the common Kaggle RLE encoder (bench/ is on the path)

__all__ = ["PEERS", "read_rgb"]


def read_rgb(path) -> np.ndarray:
    """The whole slide as (height, width, 3) uint8, as kernels read it (tifffile; either band layout)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if len(tif.pages) >= 3 and tif.pages[0].ndim == 2:  # one band per page
            return np.stack([p.asarray() for p in tif.pages[:3]], axis=-1)
        img = tif.pages[0].asarray()
    return img if img.shape[-1] == 3 else np.moveaxis(img, 0, -1)


def _normaliser(card):
    import torch

    mean = torch.tensor(card.mean, dtype=torch.float32).view(1, 3, 1, 1) * 255
    std = torch.tensor(card.std, dtype=torch.float32).view(1, 3, 1, 1) * 255
    return mean, std


def _monai(path, member, bf16: bool) -> str:
    import torch
    from monai.inferers import sliding_window_inference

    model, card = member.model.float().eval(), member.card
    rgb = read_rgb(path)
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (round(w / card.scale), round(h / card.scale)), interpolation=cv2.INTER_AREA)
    del rgb
    mean, std = _normaliser(card)
    x = (torch.from_numpy(small).permute(2, 0, 1)[None].float() - mean) / std
    if bf16:
        x, model = x.contiguous(memory_format=torch.channels_last), model.to(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        prob = sliding_window_inference(x, (card.tile_size, card.tile_size), 4,
                                        lambda t: torch.sigmoid(model(t).float()), overlap=0.25, mode="gaussian")
    full = cv2.resize(prob[0, 0].float().numpy(), (w, h), interpolation=cv2.INTER_LINEAR)
    return kaggle_encode((full > card.threshold).astype(np.uint8))


# --- kaggle-3rd: models/3-Whats goin on/Inference.py, constants and loop as published -------------------------

def _kaggle_3rd(path, member) -> str:
    import rasterio
    import torch
    import torch.nn.functional as F
    from rasterio.windows import Window
    from torch.utils.data import DataLoader, Dataset

    model, card = member.model.float().eval(), member.card
    sz, sz_reduction, expansion, TH = 2048, round(card.scale), 512, card.threshold
    mean, std = np.array(card.mean), np.array(card.std)
    s_th, p_th = 40, 1000 * (sz // 256) ** 2
    identity = rasterio.Affine(1, 0, 0, 0, 1, 0)

    def img2tensor(img, dtype=np.float32):
        if img.ndim == 2:
            img = np.expand_dims(img, 2)
        img = np.transpose(img, (2, 0, 1))
        return torch.from_numpy(img.astype(dtype, copy=False))

    class HuBMAPDataset(Dataset):
        def __init__(self):
            self.data = rasterio.open(path, transform=identity, num_threads="all_cpus")
            if self.data.count != 3:
                self.layers = [rasterio.open(s) for s in self.data.subdatasets]
            self.shape = self.data.shape
            self.sz, self.expansion = sz_reduction * sz, sz_reduction * expansion
            self.pad0 = (self.sz - self.shape[0] % self.sz) % self.sz
            self.pad1 = (self.sz - self.shape[1] % self.sz) % self.sz
            self.n0max = (self.shape[0] + self.pad0) // self.sz
            self.n1max = (self.shape[1] + self.pad1) // self.sz

        def __len__(self):
            return self.n0max * self.n1max

        def __getitem__(self, idx):
            n0, n1 = idx // self.n1max, idx % self.n1max
            x0 = -self.pad0 // 2 + n0 * self.sz - self.expansion // 2
            y0 = -self.pad1 // 2 + n1 * self.sz - self.expansion // 2
            p00, p01 = max(0, x0), min(x0 + self.sz + self.expansion, self.shape[0])
            p10, p11 = max(0, y0), min(y0 + self.sz + self.expansion, self.shape[1])
            img = np.zeros((self.sz + self.expansion, self.sz + self.expansion, 3), np.uint8)
            if self.data.count == 3:
                img[(p00 - x0):(p01 - x0), (p10 - y0):(p11 - y0)] = np.moveaxis(
                    self.data.read([1, 2, 3], window=Window.from_slices((p00, p01), (p10, p11))), 0, -1)
            else:
                for i, layer in enumerate(self.layers):
                    img[(p00 - x0):(p01 - x0), (p10 - y0):(p11 - y0), i] = layer.read(
                        1, window=Window.from_slices((p00, p01), (p10, p11)))
            if sz_reduction != 1:
                img = cv2.resize(img, ((self.sz + self.expansion) // sz_reduction,) * 2, interpolation=cv2.INTER_AREA)
            hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
            _, s, _ = cv2.split(hsv)
            if (s > s_th).sum() <= p_th or img.sum() <= p_th:
                return img2tensor((img / 255.0 - mean) / std), -1
            return img2tensor((img / 255.0 - mean) / std), idx

    def model_pred(dl):
        with torch.no_grad():
            for x, y in iter(dl):
                if (y >= 0).sum() > 0:
                    x, y = x[y >= 0], y[y >= 0]
                    py = torch.sigmoid(model(x)).detach()
                    py = F.interpolate(py, scale_factor=sz_reduction, mode="bilinear")  # their F.upsample
                    py = py.permute(0, 2, 3, 1).float().cpu()
                    m = expansion * sz_reduction // 2
                    for i in range(len(py)):
                        yield py[i, m:-m, m:-m], y[i]

    def rle_encode_less_memory(img):
        pixels = img.T.flatten()
        pixels[0] = 0
        pixels[-1] = 0
        runs = np.where(pixels[1:] != pixels[:-1])[0] + 2
        runs[1::2] -= runs[::2]
        return " ".join(str(x) for x in runs)

    ds = HuBMAPDataset()
    dl = DataLoader(ds, 2, num_workers=0, shuffle=False, pin_memory=False)
    mask = torch.zeros(len(ds), ds.sz, ds.sz, dtype=torch.int8)
    for p, i in model_pred(dl):
        mask[i.item()] = p.squeeze(-1) > TH
    mask = mask.view(ds.n0max, ds.n1max, ds.sz, ds.sz).permute(0, 2, 1, 3).reshape(ds.n0max * ds.sz, ds.n1max * ds.sz)
    mask = mask[ds.pad0 // 2:-(ds.pad0 - ds.pad0 // 2) if ds.pad0 > 0 else ds.n0max * ds.sz,
                ds.pad1 // 2:-(ds.pad1 - ds.pad1 // 2) if ds.pad1 > 0 else ds.n1max * ds.sz]
    return rle_encode_less_memory(mask.numpy())


# --- deepflash2: deepflash2/inference.py (TileModule, InferenceEnsemble.forward), config defaults -------------

def _deepflash2(path, member) -> str:
    import torch
    import torch.nn.functional as F

    model, card = member.model.float().eval(), member.card
    tile_shape, scale = (card.tile_size,) * 2, card.scale
    border_padding_factor, max_tile_shift, sigma_scale = 0.25, 0.5, 1 / 8  # deepflash2's config defaults

    def torch_gaussian(M, std):
        n = torch.arange(0, M) - (M - 1.0) / 2.0
        return torch.exp(-n ** 2 / (2 * std * std))

    g = [torch_gaussian(k, k * sigma_scale) for k in tile_shape]
    mw = torch.outer(g[0], g[1])
    mw = mw / mw.max()
    mw[mw == 0] = mw.min()
    grid_range = [torch.linspace(-scale, scale, steps=d) for d in tile_shape]
    deformation = torch.meshgrid(*grid_range, indexing="ij")

    def get_centers_1d(len_x, len_tile):
        len_padding = float(len_tile * border_padding_factor)
        start_point = len_tile / 2 - len_padding
        end_point = len_x - start_point
        n_points = int((len_x + 2 * len_padding) // (len_tile * max_tile_shift)) + 1
        return torch.linspace(start_point, end_point, n_points, dtype=torch.int64)

    def in_slices_1d(center, len_x, len_tile):
        start = (len_tile / 2 - center).clip(0).to(torch.int64)
        stop = torch.tensor(len_tile).clip(max=(len_x - center + len_tile / 2).to(torch.int64))
        return torch.stack((start, stop))

    def out_slices_1d(center, len_x, len_tile):
        start = (center - (len_tile / 2)).clip(0, len_x).to(torch.int64)
        stop = (center + (len_tile / 2)).clip(max=len_x).to(torch.int64)
        return torch.stack((start, stop))

    def tile_at(x, center):
        grids = []
        for i in range(2):
            s = x.shape[i]
            coords = deformation[i] * (tile_shape[i] / s) + (center[i] - s / 2) / (s / 2)
            grids.append(coords.to(x))
        vgrid = torch.stack(grids[::-1], dim=-1).unsqueeze_(0)
        return F.grid_sample(x.permute(2, 0, 1).unsqueeze_(0), vgrid, mode="nearest", padding_mode="reflection",
                             align_corners=False)

    x = torch.from_numpy(read_rgb(path)).float().div_(255)  # (H, W, 3) in [0, 1], as deepflash2 reads images
    mean, std = torch.tensor(card.mean).view(1, 3, 1, 1), torch.tensor(card.std).view(1, 3, 1, 1)
    traced = torch.jit.trace(model, torch.rand(1, 3, *tile_shape))
    sh = x.shape[:-1]
    shs = [int(s / scale) for s in sh]
    prob = torch.zeros((1, shs[0], shs[1]), dtype=torch.float32)
    merge_map = torch.zeros((shs[0], shs[1]), dtype=torch.float32)
    stdeviation = torch.zeros((shs[0], shs[1]), dtype=torch.float32)
    c_list = [get_centers_1d(shs[i], tile_shape[i]) for i in range(2)]
    centers = torch.stack(torch.meshgrid(c_list[0], c_list[1], indexing="ij")).permute([2, 1, 0]).reshape(-1, 2)
    ins = [in_slices_1d(centers[:, i], shs[i], tile_shape[i]) for i in range(2)]
    outs = [out_slices_1d(centers[:, i], shs[i], tile_shape[i]) for i in range(2)]
    scaled = (centers * scale).type(torch.int64)
    with torch.inference_mode():
        for i, cp in enumerate(scaled):
            tile = (tile_at(x, cp) - mean) / std
            smxs = torch.stack([torch.sigmoid(traced(tile))])
            ix0, ix1, iy0, iy1 = ins[0][0][i], ins[0][1][i], ins[1][0][i], ins[1][1][i]
            ox0, ox1, oy0, oy1 = outs[0][0][i], outs[0][1][i], outs[1][0][i], outs[1][1][i]
            batch = torch.mean(smxs, dim=0) * mw.view(1, 1, *mw.shape)
            prob[0:1, ox0:ox1, oy0:oy1] += batch[0, 0:1, ix0:ix1, iy0:iy1]
            merge_map[ox0:ox1, oy0:oy1] += mw[ix0:ix1, iy0:iy1]
            epistemic = torch.mean(smxs ** 2, dim=0) - torch.mean(smxs, dim=0) ** 2
            unc = (epistemic + torch.mean(smxs * (1 - smxs), dim=0)) / 0.25  # their uncertainty()
            stdeviation[ox0:ox1, oy0:oy1] += (torch.mean(unc, dim=1) * mw.view(1, *mw.shape))[0][ix0:ix1, iy0:iy1]
        prob /= torch.unsqueeze(merge_map, 0)
        stdeviation /= merge_map
        del x
        prob = F.interpolate(prob.unsqueeze_(0), size=tuple(sh), mode="bilinear", align_corners=False)[0]
        stdeviation = F.interpolate(stdeviation.view(1, 1, *stdeviation.shape), size=tuple(sh), mode="bilinear",
                                    align_corners=False)[0][0]
    return kaggle_encode((prob[0] > card.threshold).numpy().astype(np.uint8))


#: The one model every method races with: the default zoo's.
STARTER = "unet-lite0-s2-soup"

PEERS: dict[str, Callable] = {
    "monai": lambda path, member: _monai(path, member, bf16=False),
    "monai-bf16": lambda path, member: _monai(path, member, bf16=True),
    "kaggle-3rd": _kaggle_3rd,
    "deepflash2": _deepflash2,
}
