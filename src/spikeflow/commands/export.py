"""``spikeflow export RUN_DIR_OR_CHECKPOINT --format nir|onnx|torch [--out FILE]``."""
from __future__ import annotations

from spikeflow.commands import add_parser

EXAMPLES = """\
  spikeflow export runs/try1 --format nir                 # runs/try1/model.nir (NIR graph)
  spikeflow export runs/try1 --format nir --dt 1e-3       # NIR time constants in ms-steps -> seconds
  spikeflow export runs/try1/checkpoint_last.pt --format onnx --out plif.onnx
  spikeflow export runs/try1 --format torch               # runs/try1/model.pt2 (torch.export)
  spikeflow export runs/mine --format nir --input-shape 2,34,34 --T 10 --import my_models.py
"""

FORMATS = {"nir": ".nir", "onnx": ".onnx", "torch": ".pt2"}


def register(subparsers) -> None:
    p = add_parser(subparsers, "export", "export a trained model to NIR, ONNX or torch.export",
                   "Export the model of a run folder (checkpoint_best.pt, else checkpoint_last.pt)\n"
                   "or checkpoint, in eval mode, traced on one random input [T, B, ...]:\n"
                   "  nir    spikeflow.nir.export -> nir.write (neuromorphic hardware, snnTorch, Norse,\n"
                   "         SpikingJelly; docs/nir.md lists which models NIR can express)\n"
                   "  onnx   spikeflow.export.to_onnx (needs the onnx extra)\n"
                   "  torch  spikeflow.export.export -> torch.export.save (a .pt2 program)\n"
                   "The input shape comes from the model (or --input-shape), T from data.T.",
                   EXAMPLES)
    p.add_argument("target", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument("--format", required=True, choices=sorted(FORMATS))
    p.add_argument("--out", metavar="FILE", help="output file (default: <run>/model.<nir|onnx|pt2>)")
    p.add_argument("--T", type=int, default=None, metavar="STEPS", help="steps of the input (default data.T)")
    p.add_argument("--batch", type=int, default=1, help="batch size of the traced input (1)")
    p.add_argument("--input-shape", default=None, metavar="C,H,W",
                   help="one step's input shape when the model does not tell it")
    p.add_argument("--dt", type=float, default=1.0,
                   help="NIR only: step length in NIR time units (time constants = steps * dt)")
    p.add_argument("--set", dest="sets", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="override keys of the stored config (e.g. model.options)")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="module or .py file registering the run's model (checkpoints never import code)")
    p.set_defaults(func=_main)


def step_shape(model, given: str | None) -> tuple[int, ...]:
    """One step's input shape: ``given`` ("2,34,34"), else the model's own attributes."""
    if given:
        try:
            shape = tuple(int(d) for d in given.replace("x", ",").split(",") if d.strip())
        except ValueError:
            raise ValueError(f"--input-shape must be integers like 2,34,34, got {given!r}") from None
        if not shape or min(shape) < 1:
            raise ValueError(f"--input-shape must be positive integers like 2,34,34, got {given!r}")
        return shape
    if hasattr(model, "input_shape"):                                  # IIRNet
        return tuple(int(d) for d in model.input_shape)
    if hasattr(model, "in_features") and not hasattr(model, "weight"):  # He2020MLP
        return (int(model.in_features),)
    channels = getattr(model, "in_channels", None)
    for attr in ("frame_size", "input_size", "hw"):
        size = getattr(model, attr, None)
        if channels is not None and size is not None:
            h, w = (size, size) if isinstance(size, int) else tuple(size)
            return (int(channels), int(h), int(w))
    raise ValueError(f"cannot tell the input shape of {type(model).__name__}; pass --input-shape C,H,W")


def _main(args) -> int:
    from pathlib import Path

    import torch

    from spikeflow.train import checkpoint as ck
    from spikeflow.train.config import apply_overrides, config_from_dict
    from spikeflow.train.setup import build_model, import_plugins
    from spikeflow.train.testing import resolve_checkpoint

    path = resolve_checkpoint(args.target)
    ckpt = ck.load_checkpoint(path)
    data = apply_overrides(ckpt["config"], list(args.sets))
    data.setdefault("run", {})["imports"] = list(args.imports)
    cfg = config_from_dict(data)
    import_plugins(cfg.run.imports)
    model = build_model(cfg)
    ck.load_model_state(model, ckpt["model"], path, ckpt.get("model_name"), cfg.model.name)
    model.eval()
    steps = args.T if args.T is not None else int(cfg.data.T)
    if steps < 1 or args.batch < 1:
        raise ValueError(f"--T and --batch must be >= 1, got {steps} and {args.batch}")
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(steps, args.batch, *step_shape(model, args.input_shape), generator=gen)
    out = Path(args.out) if args.out else path.parent / f"model{FORMATS[args.format]}"
    if args.format == "nir":
        import nir

        from spikeflow.nir import export

        nir.write(out, export(model, x, dt=args.dt))
    elif args.format == "onnx":
        from spikeflow.export import to_onnx

        to_onnx(model, x, out)
    else:
        from spikeflow.export import export as torch_export

        torch.export.save(torch_export(model, x), out)
    print(f"{cfg.model.name} from {path} -> {out} ({args.format}, input [{', '.join(map(str, x.shape))}])")
    return 0
