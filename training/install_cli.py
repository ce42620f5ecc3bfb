"""`python -m training install --checkpoint runs/NAME/export --name digits`: put an inference
checkpoint where the worker finds it (`models/<name>/`), under the name tasks will call it."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from model.checkpoint import INFERENCE_MANIFEST
from model.rendering import DEFAULT_TOLERANCE, RENDER_MODES, Rendering

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = REPO / "models" if (REPO / "pyproject.toml").is_file() else Path("models")
EXTRA_FILES = ("MODEL_CARD.md", "evaluation.json")
PICTURES = {
    "reconstructions": "Held-out images; G(z, e) of their posterior means; G(z, e^r), neutralised",
    "samples": "Each row one held-out image's z, then one e per column drawn as /sample draws it "
    "(the checkpoint's sampling distribution), shared down the column",
    "transfers": "Top row gives e (attributes), left column gives z (image); cell = G(z, e)",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("install", help="copy an inference checkpoint into models/")
    parser.add_argument("--checkpoint", type=Path, required=True, help="runs/NAME/export")
    parser.add_argument("--name", required=True, help="the model name tasks use, e.g. digits")
    parser.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS)
    parser.add_argument(
        "--grids", type=Path, help="a run's grids/ directory: its latest PNGs go beside the card"
    )
    parser.add_argument(
        "--render", choices=RENDER_MODES,
        help="how the model's edits are rendered by default (model/rendering.py); default: as "
        "the checkpoint says, else generator",
    )  # fmt: skip
    parser.add_argument(
        "--tolerance", type=float, default=DEFAULT_TOLERANCE,
        help="with --render input: the change, in image units, above which the generated "
        "pixels replace the input's",
    )  # fmt: skip
    parser.set_defaults(func=run)


def install(
    checkpoint: Path,
    name: str,
    models_dir: Path,
    grids: Path | None = None,
    rendering: Rendering | None = None,
) -> Path:
    from model import load_model

    load_model(checkpoint)  # verified before anything is copied
    target = models_dir / name
    staging = models_dir / f".{name}.installing"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    manifest = json.loads((checkpoint / INFERENCE_MANIFEST).read_text())
    run_name = manifest["name"]
    manifest["name"] = name
    if rendering is not None:
        manifest["rendering"] = rendering.to_record()
    shutil.copy2(checkpoint / manifest["weights"]["file"], staging / manifest["weights"]["file"])
    (staging / INFERENCE_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    for extra in EXTRA_FILES:
        if (checkpoint / extra).is_file():
            shutil.copy2(checkpoint / extra, staging / extra)
    if grids is not None:
        pictures = []
        for kind, caption in PICTURES.items():
            latest = sorted(grids.glob(f"{kind}-*.png"))
            if latest:
                shutil.copy2(latest[-1], staging / f"{kind}.png")
                pictures.append(f"![{kind}]({kind}.png)\n\n*{caption} ({latest[-1].name}).*\n")
        card = staging / "MODEL_CARD.md"
        if pictures and card.is_file():
            card.write_text(card.read_text() + "\n## Pictures\n\n" + "\n".join(pictures))
    card = staging / "MODEL_CARD.md"
    if card.is_file() and run_name != name:
        title, _, rest = card.read_text().partition("\n")
        card.write_text(f"# Model card: `{name}` (trained as run `{run_name}`)\n{rest}")
    load_model(staging)
    # Readable by all: workers run as another user than the trainer (a container's non-root
    # user), and an export's weights are written private.
    for path in [staging, *staging.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def run(args: argparse.Namespace) -> int:
    rendering = None if args.render is None else Rendering(args.render, args.tolerance)
    target = install(args.checkpoint, args.name, args.models_dir, args.grids, rendering)
    print(f"installed {args.checkpoint} as {target}")
    return 0
