"""The public inference API: encode, generate, transfer, sample, neutralise, interpolate.

    from model import load_model
    m = load_model("models/digits", device="cpu")
    z, e = m.encode([image])                  # posterior means, (B, z_dim) and (B, e_dim)
    out = m.transfer(image, attributes)      # G(z of image, e of attributes)
    out = m.transfer(image, attributes, render="input")   # the image with that change
    variations = m.sample(image, n=8, seed=0)
    m.domain_percentiles([image])             # how far from the training images, 0-100

Used by the worker, the evaluation and notebooks alike. The edits themselves are written once,
as functions from posterior means to the latents to generate (`transfer_latents`, ...): the
methods below run them around one encode and one generate, and the worker runs the same
functions around its batched encode and generate. So is the domain check: the reconstruction
G(z, e) of each input (`reconstruction_latents`) beside the edit's latents, its error placed
among held-out images' (model/domain.py). And so is the rendering (model/rendering.py): an
edit answers the generator's picture, or the input with the edit's change, which needs the same
reconstructions.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from model import images as imageio
from model.checkpoint import CheckpointError, load_inference
from model.domain import DomainReference, reconstruction_error
from model.networks import SRbVAE
from model.rendering import RENDER_MODES, Rendering, RenderMode
from model.target_prior import TargetPrior

LatentLike = torch.Tensor | np.ndarray | Sequence[Sequence[float]]
Latents = tuple[torch.Tensor, torch.Tensor | None]  # z (B, z_dim), e (B, e_dim) or None for e^r


# --- the edits: posterior means in, latents to generate out ----------------------------------


def transfer_latents(z: torch.Tensor, e: torch.Tensor, strength: float = 1.0) -> Latents:
    """z, e of [image, attributes], (2, .) -> the image's z with e moved `strength` of the way
    from the image's own e (0) to the attributes image's (1); (1, .) each."""
    return z[:1], torch.lerp(e[:1], e[1:], strength)  # exact at both ends


def sample_latents(
    z: torch.Tensor, prior: TargetPrior, n: int, seed: int, temperature: float = 1.0
) -> Latents:
    """z of one image, (1, z_dim) -> that z n times, with n draws of e from `prior`. The draws
    come from a CPU generator seeded with `seed`, so a seed gives the same e on any device."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return z.expand(n, -1), prior.draw(n, gen, temperature)


def neutral_latents(z: torch.Tensor) -> Latents:
    """z of the images -> the same z with the reference e^r (a neutral face, a plain digit)."""
    return z, None


def interpolate_latents(z: torch.Tensor, e: torch.Tensor, steps: int) -> Latents:
    """z, e of [a, b], (2, .) -> a's z `steps` times, e moving linearly from a's to b's (both
    ends included)."""
    t = torch.linspace(0.0, 1.0, steps).unsqueeze(1)
    return z[:1].expand(steps, -1), torch.lerp(e[:1].expand(steps, -1), e[1:].expand(steps, -1), t)


def reconstruction_latents(z: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """z, e of the inputs -> the same: G of them is each input's reconstruction, whose error
    (model.domain.reconstruction_error) says how far the input lies from the training data."""
    return z, e


class ReferenceVAE:
    """A trained model ready for inference: no gradients, eval mode, one device."""

    def __init__(
        self,
        net: SRbVAE,
        manifest: dict[str, Any],
        device: torch.device,
        prior: TargetPrior | None = None,
        domain: DomainReference | None = None,
        rendering: Rendering | None = None,
    ):
        self.net = net.eval()
        self.manifest = manifest
        self.device = device
        self.cfg = net.cfg
        # Where `sample` draws e from: the checkpoint's fitted Gaussian, else N(0, I).
        self.prior = prior if prior is not None else TargetPrior.standard(net.cfg.e_dim)
        # Held-out images' reconstruction errors, where an input's is placed; None: not stored.
        self.domain = domain
        # How edits are rendered when a call does not say (model/rendering.py).
        self.rendering = rendering or Rendering()

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", "model"))

    @property
    def resolution(self) -> int:
        return self.cfg.resolution

    @property
    def z_dim(self) -> int:
        return self.cfg.z_dim

    @property
    def e_dim(self) -> int:
        return self.cfg.e_dim

    # --- tensors in, tensors out ---------------------------------------------------------------

    @torch.inference_mode()
    def encode_tensor(
        self, x: torch.Tensor, side: Executor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, R, R) in [-1, 1] -> posterior means z (B, z_dim), e (B, e_dim), on the CPU.

        `side`: an executor whose thread runs q(e|x) while this one runs q(z|x), the two
        encoders side by side. On a CPU, a pass of a few rows is too little work for torch's
        intra-op threads to share; two whole networks at once keep two cores busy."""
        x = x.to(self.device, torch.float32)
        e_done = None if side is None else side.submit(self._encode_e, x)
        z, _ = self.net.encoder_z(x)
        e = self._encode_e(x) if e_done is None else e_done.result()
        return z.float().cpu(), e.float().cpu()

    # Inference mode is per thread: these run on `side`'s too.
    @torch.inference_mode()
    def _encode_e(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.encoder_e(x)[0]

    @torch.inference_mode()
    def _generate(self, z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return self.net.generator(z, e)

    @torch.inference_mode()
    def generate_tensor(
        self, z: torch.Tensor, e: torch.Tensor | None = None, side: Executor | None = None
    ) -> torch.Tensor:
        """G(z, e), e = e^r when None. (B, 3, R, R) in [-1, 1], on the CPU.

        `side`: an executor whose thread generates the second half of the rows while this one
        generates the first (as in `encode_tensor`)."""
        z = z.to(self.device, torch.float32)
        e = self.net.expand_e_ref(z.shape[0]) if e is None else e.to(self.device, torch.float32)
        half = (z.shape[0] + 1) // 2
        if side is None or half == z.shape[0]:
            return self._generate(z, e).float().cpu()
        rest = side.submit(self._generate, z[half:], e[half:])
        first = self._generate(z[:half], e[:half])
        return torch.cat([first, rest.result()]).float().cpu()

    def reconstruction_error_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, R, R) in [-1, 1] -> (B,) mean |x - G(z, e)| per pixel value, on the CPU."""
        recon = self.generate_tensor(*reconstruction_latents(*self.encode_tensor(x)))
        return reconstruction_error(x, recon)

    # --- pictures in, pictures out -------------------------------------------------------------

    def encode(self, images: Sequence[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior means of a batch of pictures of any size."""
        return self.encode_tensor(imageio.to_tensor(images, self.resolution))

    def generate(self, z: LatentLike, e: LatentLike | None = None) -> list[Image.Image]:
        z_t = self._latent(z, self.z_dim, "z")
        e_t = None if e is None else self._latent(e, self.e_dim, "e")
        if e_t is not None and e_t.shape[0] != z_t.shape[0]:
            raise ValueError(f"z has {z_t.shape[0]} rows but e has {e_t.shape[0]}")
        return imageio.to_pil(self.generate_tensor(z_t, e_t))

    def render_edit(
        self,
        x: torch.Tensor,
        z: torch.Tensor,
        e: torch.Tensor,
        latents: Latents,
        base: torch.Tensor,
        render: RenderMode | None = None,
    ) -> torch.Tensor:
        """The edit `latents` of the inputs x (posterior means z, e), output row i an edit of
        input base[i], rendered as `render` asks (None: the model's default). (N, 3, R, R)"""
        if render is not None and render not in RENDER_MODES:
            raise ValueError(f"render must be one of {RENDER_MODES}, got {render!r}")
        z_edit, e_edit = latents
        if not self.rendering.needs_reconstruction(render):
            return self.generate_tensor(z_edit, e_edit)
        n = z_edit.shape[0]
        if e_edit is None:
            with torch.inference_mode():
                e_edit = self.net.expand_e_ref(n).float().cpu()
        # One pass: the edits, then each distinct input's reconstruction (samples of one face
        # share theirs), composed with every edit of that input.
        inputs, row_input = torch.unique(base, return_inverse=True)
        out = self.generate_tensor(torch.cat([z_edit, z[inputs]]), torch.cat([e_edit, e[inputs]]))
        return self.rendering.compose(x[base], out[:n], out[n:][row_input], render)

    def _edit(
        self,
        images: Sequence[Image.Image],
        edit: Callable[[torch.Tensor, torch.Tensor], Latents],
        base: Sequence[int],
        render: RenderMode | None,
    ) -> list[Image.Image]:
        """Pictures in, `edit` of their posterior means, pictures out."""
        x = imageio.to_tensor(images, self.resolution)
        z, e = self.encode_tensor(x)
        rows = torch.as_tensor(base, dtype=torch.long)
        return imageio.to_pil(self.render_edit(x, z, e, edit(z, e), rows, render))

    def transfer(
        self,
        image: Image.Image,
        attributes: Image.Image,
        strength: float = 1.0,
        render: RenderMode | None = None,
    ) -> Image.Image:
        """`image`'s common factors z with `attributes`' target factors e.

        strength in [0, 1] moves e from the image's own (0) to the attributes image's (1).
        render: "generator" (G(z, e)), "input" (the image with the edit's change; see
        model/rendering.py) or None (the model's default).
        """
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        pair = [image, attributes]
        return self._edit(pair, lambda z, e: transfer_latents(z, e, strength), [0], render)[0]

    def sample(
        self,
        image: Image.Image,
        n: int = 8,
        seed: int | None = None,
        temperature: float = 1.0,
        render: RenderMode | None = None,
    ) -> list[Image.Image]:
        """n variations of the target factors for the image's fixed z: e drawn from the
        checkpoint's sampling distribution (`self.prior`), its spread scaled by `temperature`.

        The draws come from a CPU generator seeded with `seed`, so a seed gives the same
        images on any device; one batched forward pass generates all n.
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        seed = secrets.randbits(63) if seed is None else seed
        return self._edit(
            [image],
            lambda z, e: sample_latents(z, self.prior, n, seed, temperature),
            [0] * n,
            render,
        )

    def neutralize(self, image: Image.Image, render: RenderMode | None = None) -> Image.Image:
        """The image with the reference target factors e^r (a neutral face, a plain digit)."""
        return self._edit([image], lambda z, e: neutral_latents(z), [0], render)[0]

    def interpolate(
        self, a: Image.Image, b: Image.Image, steps: int = 8, render: RenderMode | None = None
    ) -> list[Image.Image]:
        """a's z with e moving linearly from a's to b's in `steps` images (both ends included)."""
        if steps < 2:
            raise ValueError(f"steps must be at least 2, got {steps}")
        return self._edit(
            [a, b], lambda z, e: interpolate_latents(z, e, steps), [0] * steps, render
        )

    def domain_percentiles(self, images: Sequence[Image.Image]) -> list[float]:
        """Each picture's reconstruction error as a percentile (0-100) of the held-out
        images' the checkpoint stores; above `self.domain.threshold`: out of domain."""
        if self.domain is None:
            raise ValueError(
                f"{self.name} stores no domain reference (python -m training domain-stats)"
            )
        x = imageio.to_tensor(images, self.resolution)
        return self.domain.percentile(self.reconstruction_error_tensor(x))

    def _latent(self, value: LatentLike, dim: int, name: str) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(value, dtype=np.float32))
        if t.ndim == 1:
            t = t.unsqueeze(0)
        if t.ndim != 2 or t.shape[1] != dim:
            raise ValueError(f"{name} must have shape (B, {dim}), got {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return t


def load_model(path: str | Path, device: str | torch.device = "cpu") -> ReferenceVAE:
    """Loads an inference checkpoint (its directory or its model.json); never unpickles."""
    device = torch.device(device)
    net, prior, manifest = load_inference(path, device)
    try:
        domain = DomainReference.from_record(manifest.get("domain"))
    except ValueError as exc:
        raise CheckpointError(f"{path}: domain: {exc}") from None
    try:
        rendering = Rendering.from_record(manifest.get("rendering"))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: rendering: {exc}") from None
    return ReferenceVAE(net, manifest, device, prior, domain, rendering)
