"""``spikeflow data emulate SOURCE --out DIR``: static images -> N-MNIST-format event folder.

Registered by :mod:`spikeflow.commands.data` (the leading underscore keeps it from being a
top-level command). Calls :func:`spikeflow.data.emulated.emulate_source`.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from spikeflow.commands import add_parser

EXAMPLES = """\
  spikeflow data emulate digits --out /tmp/n_digits --size 16 --sensor 20
  spikeflow data emulate fashion_mnist --out /data/n_fmnist --option threshold=0.3 noise_rate_hz=1
  spikeflow data emulate mnist --root /data/mnist --out /data/n_mnist --workers 2
  # then: spikeflow train my.yaml --set data.name=nmnist data.root=/data/n_mnist \\
  #           data.options.check_counts=false
"""


def register(sub) -> None:
    p = add_parser(sub, "emulate", "turn a static image dataset into DVS event streams",
                   "Emulate a DVS sensor watching the images of SOURCE (digits, mnist,\n"
                   "fashion_mnist) move along three saccades (like N-MNIST) and write an\n"
                   "N-MNIST-format folder OUT/Train|Test/<class>/<index>.bin, atomically.\n"
                   "Emulator options (--option KEY=VALUE): threshold, threshold_sigma,\n"
                   "refractory_us, noise_rate_hz, background, frames_per_saccade, saccade_us,\n"
                   "amplitude_px, seed.", EXAMPLES)
    p.add_argument("source", metavar="SOURCE", help="digits | mnist | fashion_mnist")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to create")
    p.add_argument("--root", help="folder of the source's files (mnist, fashion_mnist)")
    p.add_argument("--size", type=int, help="upscale images to SIZE x SIZE first (digits)")
    p.add_argument("--sensor", type=int, help="sensor width = height (default image + 6 px)")
    p.add_argument("--option", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="emulator option (YAML value)")
    p.add_argument("--workers", type=int, help="processes (default: CPU count)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_main)


def emulator_config(sensor: int | None, options: dict[str, Any]) -> Any:
    """An ``EmulatorConfig`` from CLI options; unknown keys are named with the allowed ones."""
    from spikeflow.events.emulator import EmulatorConfig

    fields = [f.name for f in dataclasses.fields(EmulatorConfig) if f.name != "sensor_size"]
    unknown = [k for k in options if k not in fields]
    if unknown:
        raise ValueError(f"unknown emulator option(s) {', '.join(unknown)}; allowed: "
                         f"{', '.join(fields)}")
    return EmulatorConfig(sensor_size=(sensor, sensor) if sensor else None, **options)


def _main(args) -> int:
    from spikeflow.data.emulated import emulate_source
    from spikeflow.train.config import parse_override

    options = {}
    for item in args.option:
        keys, value = parse_override(item)
        options[".".join(keys)] = value
    out = emulate_source(args.source, args.out, root=args.root, size=args.size,
                         config=emulator_config(args.sensor, options), workers=args.workers,
                         progress=not args.quiet, overwrite=args.overwrite)
    print(f"wrote {out}")
    return 0
