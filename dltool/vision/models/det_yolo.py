"""Our YOLO-style detector: a convolutional backbone, an FPN neck, and a grid head per scale.

Backbone: our small CNN (conv-BN-SiLU, stride-2 stages with a residual block each) or a torchvision
ResNet / MobileNet (`--backbone`, weights=None; `--pretrained` takes torchvision's own weight files for
it). Neck: a feature pyramid (top-down, upsample + add) over `strides`: 8, 16 and 32 (P3-P5, YOLOv5's),
or 4, 8 and 16 for small objects (P2-P4, as Ultralytics' -p2 models add P2; detect train chooses from
the boxes). Head: per cell and scale, objectness, 4 box values and class scores, anchor-free: the box
centre is the cell centre plus an offset of up to +-2 cells (sigmoid), its size exp(t) strides. The
neck belongs to the head module, so --freeze-backbone trains both.

Target assignment (for small and crowded objects): a cell is positive for a box on every scale when it
holds the box centre, or when its centre lies inside the box and within 2 cells of the box centre
(YOLOX's centre sampling); a small object thus always gets its centre cell on the finest scale and
several neighbours, and a cell that several boxes claim goes to the smallest (FCOS's rule), so crowded
small objects are not swallowed by a large one behind them.

Losses (YOLOX's normalisation, by the number of positives): CIoU (torchvision.ops) for the boxes,
BCE for objectness against the predicted box's IoU with its target (YOLOv5: confidence ranks
localisation quality, which mAP rewards), BCE for the classes on positive cells.
Decoding: score = objectness x class probability, then torchvision.ops.batched_nms.
Sizes `n|s|m` scale width and depth like Ultralytics' model scales.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from dltool.core.errors import OptionError
from dltool.vision.models import DETECTORS

SCALES = {"n": (16, 1), "s": (32, 1), "m": (48, 2)}  # first width, residual blocks per stage
BACKBONES = ("cnn", "resnet18", "resnet34", "resnet50", "mobilenet_v3_small", "mobilenet_v3_large")
STRIDES = (8, 16, 32)  # the default pyramid
BACKBONE_STRIDES = (4, 8, 16, 32)  # where a pyramid level may sit
CENTRE_RADIUS = 2.0  # cells
OFFSET_RANGE = 2.0   # the predicted centre moves up to this many cells from the cell's centre


def conv(cin: int, cout: int, k: int = 3, s: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.SiLU(inplace=True))


class Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(conv(c, c, 1), conv(c, c, 3))

    def forward(self, x):
        return x + self.body(x)


class SmallCNN(nn.Module):
    """A stride-4 stem, then stride 2 per stage up to the coarsest of `strides`; returns those maps."""

    def __init__(self, in_channels: int, width: int, blocks: int, strides: tuple[int, ...]):
        super().__init__()
        w = [width, width * 2, width * 4, width * 8, width * 8]
        self.stem = nn.Sequential(conv(in_channels, w[0], 3, 2), conv(w[0], w[1], 3, 2),
                                  *[Residual(w[1]) for _ in range(blocks)])  # stride 4
        n_stages = BACKBONE_STRIDES.index(max(strides))
        self.stages = nn.ModuleList(nn.Sequential(conv(w[i], w[i + 1], 3, 2), *[Residual(w[i + 1]) for _ in range(blocks)])
                                    for i in range(1, 1 + n_stages))
        self.keep = [s in strides for s in BACKBONE_STRIDES[:1 + n_stages]]
        self.channels = tuple(c for c, k in zip(w[1:], self.keep) if k)

    def forward(self, x):
        x = self.stem(x)
        out = [x]
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return [o for o, k in zip(out, self.keep) if k]


class TorchvisionBackbone(nn.Module):
    """A torchvision ResNet or MobileNetV3 (weights=None), cut where it reaches each of `strides` (the
    blocks past the coarsest are dropped)."""

    def __init__(self, name: str, in_channels: int, strides: tuple[int, ...]):
        super().__init__()
        import torchvision

        net = getattr(torchvision.models, name)(weights=None)
        resnet = name.startswith("resnet")
        blocks = ([net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4]
                  if resnet else net.features)
        # each block's output stride, measured; a level ends after the last block at its stride
        x, ends = torch.zeros(1, 3, 64, 64), {}
        with torch.no_grad():
            for i, block in enumerate(blocks):
                x = block(x)
                ends[64 // x.shape[-1]] = i + 1
        cuts = [ends[s] for s in strides]
        spans = list(zip([0] + cuts[:-1], cuts))
        # the modules' names stay those of the 8, 16, 32 cut before strides were chosen, so older model
        # files load: a ResNet's first level a Sequential, a lone stage as itself; MobileNet slices
        self.layers = nn.ModuleList((blocks[a] if b - a == 1 else nn.Sequential(*blocks[a:b])) if resnet
                                    else blocks[a:b] for a, b in spans)
        # torchvision's name of each tensor we kept -> ours, found by identity (the layers are the same
        # modules), so that --pretrained takes the user's ImageNet classification weights as they are
        ours = {id(t): name for name, t in self.state_dict(keep_vars=True).items()}
        self.torchvision_names = {name: ours[id(t)] for name, t in net.state_dict(keep_vars=True).items()
                                  if id(t) in ours}
        if in_channels != 3:
            first = next(m for m in self.modules() if isinstance(m, nn.Conv2d))
            first.weight = nn.Parameter(first.weight.detach().mean(1, keepdim=True).repeat(1, in_channels, 1, 1))
            first.in_channels = in_channels
        with torch.no_grad():
            self.channels = tuple(f.shape[1] for f in self._run(torch.zeros(1, in_channels, 64, 64)))

    def _run(self, x):
        out = []
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out

    def forward(self, x):
        return self._run(x)


class Head(nn.Module):
    """The neck and the grid head, everything after the backbone (so --freeze-backbone trains them alone,
    and --pretrained backbone weights leave them fresh). Neck: a feature pyramid (top-down, upsample +
    add) over the backbone's stride 8, 16 and 32 maps. Per scale: a 3x3 conv, then a 1x1 to objectness
    + 4 box values + classes. Priors as YOLO/RetinaNet: objectness starts at 1%, so early training is
    not swamped by thousands of easy negatives."""

    def __init__(self, channels: tuple[int, ...], neck: int, num_classes: int):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, neck, 1) for c in channels)
        self.smooth = nn.ModuleList(conv(neck, neck) for _ in channels)
        self.convs = nn.ModuleList(conv(neck, neck) for _ in channels)
        self.preds = nn.ModuleList(nn.Conv2d(neck, 5 + num_classes, 1) for _ in channels)
        for p in self.preds:
            nn.init.zeros_(p.bias)
            p.bias.data[0] = -4.6
            p.bias.data[5:] = -2.0

    def forward(self, feats):
        up, fused = None, []
        for f, lat, smooth in zip(reversed(feats), reversed(self.lateral), reversed(self.smooth)):
            y = lat(f)
            if up is not None:
                y = y + F.interpolate(up, size=y.shape[-2:], mode="nearest")
            up = y
            fused.append(smooth(y))
        return [p(c(f)) for f, c, p in zip(reversed(fused), self.convs, self.preds)]


class YOLO(nn.Module):
    def __init__(self, num_classes: int, in_channels: int, width: int, blocks: int, backbone: str, neck: int,
                 strides: tuple[int, ...]):
        super().__init__()
        self.num_classes = num_classes
        self.backbone = (SmallCNN(in_channels, width, blocks, strides) if backbone == "cnn"
                         else TorchvisionBackbone(backbone, in_channels, strides))
        self.head = Head(self.backbone.channels, neck, num_classes)
        self.strides = strides

    def raw(self, x) -> torch.Tensor:
        """(N, A, 5 + K) over every cell of every scale, finest first."""
        outs = self.head(self.backbone(x))
        return torch.cat([o.flatten(2) for o in outs], 2).transpose(1, 2)

    def cells(self, size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Cell centres (A, 2) in pixels and their strides (A,), for a size x size input."""
        centres, strides = [], []
        for s in self.strides:
            n = -(-size // s)
            ys, xs = torch.meshgrid(torch.arange(n, device=device), torch.arange(n, device=device), indexing="ij")
            centres.append(torch.stack([xs, ys], -1).reshape(-1, 2).float().add(0.5).mul(s))
            strides.append(torch.full((n * n,), float(s), device=device))
        return torch.cat(centres), torch.cat(strides)

    def decode(self, raw, size: int):
        """-> boxes (N, A, 4) x1y1x2y2 pixels, objectness logits (N, A), class logits (N, A, K)."""
        centre, stride = self.cells(size, raw.device)
        xy = centre + (raw[..., 1:3].sigmoid() * 2 - 1) * OFFSET_RANGE * stride[:, None]
        wh = raw[..., 3:5].clamp(max=6).exp() * stride[:, None]
        return torch.cat([xy - wh / 2, xy + wh / 2], -1), raw[..., 0], raw[..., 5:]

    def torchvision_keys(self, state_dict: dict) -> dict:
        """load_pretrained's mapping for a plain state_dict: a torchvision backbone's own weights (e.g.
        resnet18's ImageNet file) land in our backbone; anything else is taken by our own names."""
        names = getattr(self.backbone, "torchvision_names", {})
        if not any(k in names for k in state_dict):
            return state_dict
        return {"backbone." + names[k]: v for k, v in state_dict.items() if k in names}

    def forward(self, x, targets=None):
        """Without targets: the raw grid predictions; with targets (N, M, 5 rows [cls, x1, y1, x2, y2], cls -1
        padding): the training loss, computed here so that DDP sees one forward."""
        raw = self.raw(x)
        if targets is None:
            return raw
        return self.loss(raw, targets, x.shape[-1])

    def loss(self, raw, targets, size: int) -> torch.Tensor:
        from torchvision.ops import box_iou, complete_box_iou_loss

        raw = raw.float()
        boxes, obj, cls = self.decode(raw, size)
        centre, stride = self.cells(size, raw.device)
        valid = targets[..., 0] >= 0                                     # (N, M)
        gt = targets[..., 1:]                                            # (N, M, 4)
        gc = (gt[..., :2] + gt[..., 2:]) / 2
        cx, cy = centre[None, :, None, 0], centre[None, :, None, 1]      # (1, A, 1)
        s = stride[None, :, None]
        inside = (cx > gt[:, None, :, 0]) & (cx < gt[:, None, :, 2]) & (cy > gt[:, None, :, 1]) & (cy < gt[:, None, :, 3])
        dx, dy = (cx - gc[:, None, :, 0]).abs(), (cy - gc[:, None, :, 1]).abs()
        holds_centre = (dx <= s / 2) & (dy <= s / 2)
        near = (dx < CENTRE_RADIUS * s) & (dy < CENTRE_RADIUS * s)
        claim = (holds_centre | (inside & near)) & valid[:, None, :]     # (N, A, M)
        area = ((gt[..., 2] - gt[..., 0]) * (gt[..., 3] - gt[..., 1]))[:, None, :].expand_as(claim)
        best = torch.where(claim, area, torch.full_like(area, float("inf"))).argmin(-1)  # (N, A)
        pos = claim.any(-1)
        n_pos = pos.sum().clamp_min(1).float()
        obj_target = torch.zeros_like(obj)
        if pos.any():
            target_boxes = gt.gather(1, best[..., None].expand(-1, -1, 4))[pos]
            target_cls = targets[..., 0].long().gather(1, best)[pos]
            pred = boxes[pos]
            box_loss = complete_box_iou_loss(pred, target_boxes, reduction="sum")
            with torch.no_grad():
                iou = box_iou(pred, target_boxes).diagonal().clamp(0, 1)
            obj_target[pos] = iou.to(obj_target.dtype)
            cls_loss = F.binary_cross_entropy_with_logits(cls[pos], F.one_hot(target_cls, self.num_classes).float(),
                                                          reduction="sum")
        else:
            box_loss = cls_loss = raw.sum() * 0
        obj_loss = F.binary_cross_entropy_with_logits(obj, obj_target, reduction="sum")
        return (5.0 * box_loss + obj_loss + cls_loss) / n_pos

    @torch.no_grad()
    def detect(self, x, conf: float, iou: float, max_det: int = 100):
        """-> per image (boxes (D, 4) pixels of the input, scores (D,), labels (D,))."""
        return nms(*self.scores(x), conf=conf, iou=iou, max_det=max_det)

    def scores(self, x):
        """-> boxes (N, A, 4) and class scores (N, A, K) = objectness x class probability."""
        boxes, obj, cls = self.decode(self.raw(x).float(), x.shape[-1])
        return boxes, obj.sigmoid()[..., None] * cls.sigmoid()


def nms(boxes, scores, *, conf: float, iou: float, max_det: int = 100, pre_nms: int = 3000):
    """Per image: every (cell, class) scoring at least `conf`, class-wise NMS (batched_nms), the best max_det."""
    from torchvision.ops import batched_nms

    out = []
    k = scores.shape[-1]
    for b, s in zip(boxes, scores):
        flat = s.flatten()
        keep = (flat >= conf).nonzero().squeeze(1)
        if keep.numel() > pre_nms:
            keep = keep[flat[keep].topk(pre_nms).indices]
        cand_scores, cand_labels, cand_boxes = flat[keep], keep % k, b[keep // k]
        chosen = batched_nms(cand_boxes, cand_scores, cand_labels, iou)[:max_det]
        out.append((cand_boxes[chosen], cand_scores[chosen], cand_labels[chosen]))
    return out


def parse_strides(spec) -> tuple[int, ...]:
    """'4,8,16' (or a sequence) -> (4, 8, 16): at least two levels, ascending, each one of BACKBONE_STRIDES."""
    try:
        strides = tuple(int(v) for v in (spec.split(",") if isinstance(spec, str) else spec))
    except ValueError:
        strides = ()
    if len(strides) < 2 or list(strides) != sorted(set(strides)) or not set(strides) <= set(BACKBONE_STRIDES):
        raise OptionError(f"--strides {spec!r} must be two or more of {', '.join(map(str, BACKBONE_STRIDES))}, "
                          "ascending", "e.g. --strides 8,16,32, or 4,8,16 for small objects")
    return strides


def _yolo(num_classes: int, in_channels: int, scale: str, backbone: str, strides, width=None, blocks=None,
          neck=None) -> YOLO:
    if scale not in SCALES:
        raise OptionError(f"--scale {scale!r} is not one of {', '.join(SCALES)}", "use --scale n, s or m")
    if backbone not in BACKBONES:
        from dltool.core.errors import unknown_name

        raise unknown_name("--backbone", backbone, BACKBONES)
    w, b = SCALES[scale]
    return YOLO(num_classes, in_channels, width or w, blocks or b, backbone, neck or 2 * (width or w),
                parse_strides(strides))


@DETECTORS.register("yolo", min_size=32, small=128, size=640)
def yolo(*, num_classes: int, in_channels: int = 3, scale: str = "n", backbone: str = "cnn",
         strides=STRIDES) -> YOLO:
    return _yolo(num_classes, in_channels, scale, backbone, strides)


@DETECTORS.register("yolo_tiny", min_size=32, size=64)
def yolo_tiny(*, num_classes: int, in_channels: int = 3, strides=STRIDES) -> YOLO:
    """For tests: width 8, one residual block per stage (takes neither --scale nor --backbone)."""
    return _yolo(num_classes, in_channels, "n", "cnn", strides, width=8, blocks=1, neck=32)
