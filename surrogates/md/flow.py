"""Conditional flow matching of the configuration ``τ`` later, and batched rollouts.

Given the current configuration ``xc``, the conditions and the jump length ``τ``, the model
transports ``x0 = xc + σ ε`` (ε an isotropic Gaussian with zero centroid) to a sample of the
configuration ``τ`` later, rigidly aligned onto ``xc`` (global tumbling carries no
information). Training regresses the straight-line velocity ``x1 - x0`` at
``xs = (1 - s) x0 + s x1`` (Lipman et al. 2023); sampling integrates the learnt field from
``s = 0`` to ``1`` with Heun steps. Because the velocity network is equivariant and the
noise is isotropic, the distribution of samples rotates with the input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from sciwm.md.molecule import Molecule
from sciwm.md.torch_ops import valid_frames
from surrogates.md.egnn import NetConfig, VelocityNet
from surrogates.md.geometry import centre, chirality, kabsch_align, project_bonds, sp3_centres
from surrogates.md.graph import batch_edges, full_graph, topological_distance


@dataclass(frozen=True)
class FlowConfig:
    """Generative-model settings.

    Attributes:
        net: Velocity-network size.
        sigma: Standard deviation of the noise added to ``xc`` to start the flow, nm.
        ode_steps: Heun steps per sample.
        condition_names: Names of the conditions, in the order of the condition vector.
        condition_centre: Value subtracted from each condition.
        condition_scale: Divisor of each condition.
    """

    net: NetConfig = field(default_factory=NetConfig)
    sigma: float = 0.03
    ode_steps: int = 3
    condition_names: tuple[str, ...] = ("temperature",)
    condition_centre: tuple[float, ...] = (450.0,)
    condition_scale: tuple[float, ...] = (150.0,)


class FlowEmulator(nn.Module):
    """Samples ``x(t + τ) | x(t), conditions`` for batches of trajectories."""

    def __init__(self, molecule: Molecule, config: FlowConfig) -> None:
        super().__init__()
        self.molecule, self.config = molecule, config
        self.net = VelocityNet(config.net)
        n = molecule.n_atoms
        edges = full_graph(n)
        bonds = torch.tensor(molecule.bonds, dtype=torch.long)
        topo = topological_distance(n, bonds)
        self.register_buffer("kinds", torch.tensor(molecule.kinds, dtype=torch.long))
        self.register_buffer("edges", edges)
        self.register_buffer("edge_type", (topo[edges[0], edges[1]] - 1).clamp(0, 3))
        self.register_buffer("bonds", bonds)
        iu = torch.triu_indices(n, n, offset=1)
        angles = iu[:, topo[iu[0], iu[1]] == 2].T.contiguous()
        self.register_buffer("angle_pairs", angles, persistent=False)
        kinds = torch.tensor(molecule.kinds, dtype=torch.long)
        self.register_buffer("sp3", sp3_centres(n, bonds, kinds), persistent=False)
        self._graph_cache: dict[tuple[int, torch.device], tuple[Tensor, ...]] = {}
        self.register_buffer("r0", torch.tensor(molecule.r0, dtype=torch.float32))

    def encode_conditions(self, conditions: Tensor, tau_ps: Tensor) -> Tensor:
        """Normalised condition vector.

        Args:
            conditions: ``B x C`` raw conditions (e.g. temperature in K).
            tau_ps: ``B`` jump lengths in ps.

        Returns:
            ``B x (C + 1)``.
        """
        c0 = torch.tensor(self.config.condition_centre, dtype=conditions.dtype)
        cs = torch.tensor(self.config.condition_scale, dtype=conditions.dtype)
        log_tau = torch.log10(tau_ps / 10.0).unsqueeze(-1)
        return torch.cat([(conditions - c0.to(conditions)) / cs.to(conditions), log_tau], -1)

    def velocity(self, xs: Tensor, xc: Tensor, cond: Tensor, s: Tensor) -> Tensor:
        """Velocity field on a batch.

        Args:
            xs: ``B x n x 3``; xc: ``B x n x 3``; cond: ``B x (C+1)``; s: ``B``.

        Returns:
            ``B x n x 3``.
        """
        b, n = xs.shape[:2]
        key = (b, xs.device)
        if key not in self._graph_cache:
            self._graph_cache.clear()
            self._graph_cache[key] = (
                batch_edges(self.edges, n, b),
                self.edge_type.repeat(b),
                torch.arange(b, device=xs.device).repeat_interleave(n),
                self.kinds.repeat(b),
            )
        edge_index, edge_type, batch, kinds = self._graph_cache[key]
        v = self.net(
            xs.reshape(-1, 3),
            xc.reshape(-1, 3),
            self.kinds.repeat(b),
            cond,
            s,
            edge_index,
            edge_type,
            batch,
        )
        return centre(v.reshape(b, n, 3))

    def noise(self, xc: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``xc + σ ε`` with ε an isotropic Gaussian of zero centroid."""
        eps = torch.randn(xc.shape, generator=generator, dtype=xc.dtype).to(xc.device)
        return xc + self.config.sigma * centre(eps)

    def loss(self, xc: Tensor, xnext: Tensor, conditions: Tensor, tau_ps: Tensor) -> Tensor:
        """Flow-matching loss on a batch of transitions.

        Args:
            xc: ``B x n x 3`` configurations at ``t``.
            xnext: ``B x n x 3`` configurations at ``t + τ``.
            conditions: ``B x C``.
            tau_ps: ``B``.

        Returns:
            Scalar mean squared velocity error (nm²).
        """
        xc = centre(xc)
        x1 = centre(kabsch_align(xnext, xc))
        x0 = self.noise(xc)
        s = torch.rand(xc.shape[0], device=xc.device)
        xs = (1 - s.view(-1, 1, 1)) * x0 + s.view(-1, 1, 1) * x1
        v = self.velocity(xs, xc, self.encode_conditions(conditions, tau_ps), s)
        return ((v - (x1 - x0)) ** 2).sum(-1).mean()

    @torch.no_grad()
    def sample(
        self,
        xc: Tensor,
        conditions: Tensor,
        tau_ps: Tensor,
        generator: torch.Generator | None = None,
        steps: int | None = None,
    ) -> Tensor:
        """One jump: configurations ``τ`` later.

        Args:
            xc: ``B x n x 3``; conditions: ``B x C``; tau_ps: ``B``.
            generator: Noise generator.
            steps: Heun steps (default: the config's ``ode_steps``).

        Returns:
            ``B x n x 3``, centred.
        """
        xc = centre(xc)
        cond = self.encode_conditions(conditions, tau_ps)
        x = self.noise(xc, generator)
        steps = steps or self.config.ode_steps
        h = 1.0 / steps
        for k in range(steps):
            s0 = torch.full((x.shape[0],), k * h, device=x.device)
            v0 = self.velocity(x, xc, cond, s0)
            x_pred = x + h * v0
            v1 = self.velocity(x_pred, xc, cond, s0 + h)
            x = x + 0.5 * h * (v0 + v1)
        return centre(x)


@dataclass
class Rollout:
    """Result of a batched rollout.

    Attributes:
        positions: ``(n_jumps + 1) x B x n x 3`` (the start first): the frames the emulator
            emits, after its constraint step.
        raw_valid: ``n_jumps x B`` whether the network's first raw sample of each jump was
            chemically valid (every bond within 10 % of the force field's, no stereocentre
            inverted), before any resampling or projection.
        valid: ``n_jumps x B`` the same test on the emitted frames (``positions[1:]``).
        wall_s: Seconds spent.
        rejected: ``n_jumps x B`` whether the jump was rejected (every resample failed the
            validity test), so the trajectory stayed where it was.
        relaxed: ``n_jumps x B`` whether the corrector relaxed the frame (``None`` when the
            rollout ran without one).
    """

    positions: Tensor
    raw_valid: Tensor
    valid: Tensor
    wall_s: float
    rejected: Tensor
    relaxed: Tensor | None = None


@torch.no_grad()
def rollout(
    models: list[FlowEmulator] | FlowEmulator,
    start: Tensor,
    conditions: Tensor,
    tau_ps: float,
    n_jumps: int,
    project: bool = True,
    seed: int = 0,
    resamples: int = 3,
    chunk: int | None = None,
    relax: Callable[[Tensor, Tensor, int, bool], tuple[Tensor, Tensor]] | None = None,
    ode_steps: int | None = None,
) -> Rollout:
    """Roll many trajectories forward in jumps of ``τ``.

    Trajectories are spread evenly over the ensemble members (member ``k`` drives
    trajectories ``k, k + M, …``), so the ensemble's disagreement shows in the spread.

    Args:
        models: One emulator or an ensemble.
        start: ``B x n x 3`` start configurations.
        conditions: ``B x C`` conditions.
        tau_ps: Jump length.
        n_jumps: Number of jumps.
        project: After every jump, project bond lengths onto the force field's and 1-3
            distances (bond angles) onto those of the start configuration — the stiff degrees
            of freedom an MD engine keeps near-rigid — so that errors in them cannot accumulate
            over a rollout; then bonds alone once more. The raw validity is recorded before,
            the validity of the emitted frames after.
        seed: Seed of the noise.
        resamples: A sample that inverts a stereocentre (or, with ``project``, still has a
            bond more than 10 % off after the projection) is drawn again up to this many
            times; if it still fails, the jump is rejected and the trajectory stays in place.
        chunk: Most trajectories per network call (default: 8 on a CPU, where 5–10 small
            graphs per call are fastest per graph as larger edge batches fall out of cache;
            all on a GPU).
        relax: The corrector (:class:`surrogates.md.relax.Relaxer`): after every jump, a
            short real simulation from each accepted frame, which is then emitted and
            jumped from; its time is counted in ``wall_s``. Called as ``relax(x,
            conditions, seed, restart)``, restarting its random stream at the first jump.
        ode_steps: The network's Heun steps per jump (default: each model's config).

    Returns:
        A :class:`Rollout`.
    """
    import time

    members = models if isinstance(models, list) else [models]
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    device = members[0].kinds.device
    x = centre(start.to(device=device, dtype=torch.float32))
    conditions = conditions.to(device=device, dtype=torch.float32)
    b = x.shape[0]
    chunk = chunk or (8 if device.type == "cpu" else b)
    owner = torch.arange(b) % len(members)
    tau = torch.full((b,), float(tau_ps), device=device)
    frames, raw_valid, valid, rejected, relaxed = [x.cpu()], [], [], [], []
    m0 = members[0]
    pairs = torch.cat([m0.bonds, m0.angle_pairs])
    d13 = (x[:, m0.angle_pairs[:, 0]] - x[:, m0.angle_pairs[:, 1]]).norm(dim=-1)
    targets = torch.cat([m0.r0.expand(b, -1), d13], dim=-1)
    hand0 = chirality(x, m0.sp3)

    def acceptable(y: Tensor) -> Tensor:  # all bonds within 10 %, stereocentres kept
        same = (chirality(y, m0.sp3) == hand0).all(-1)
        return same & valid_frames(y, m0.bonds, m0.r0)

    for jump in range(n_jumps):
        nxt = x.clone()  # a jump rejected after every resample leaves the trajectory in place
        todo = torch.ones(b, dtype=torch.bool, device=device)
        raw = torch.empty_like(x)
        for attempt in range(resamples + 1):
            for k, model in enumerate(members):
                sel = ((owner.to(device) == k) & todo).nonzero(as_tuple=True)[0]
                for part in sel.split(chunk):  # small graphs batches stay in cache
                    raw[part] = model.sample(
                        x[part], conditions[part], tau[part], gen, steps=ode_steps
                    )
            if not torch.all(torch.isfinite(raw)):
                raise FloatingPointError("an emulator rollout produced non-finite coordinates")
            if attempt == 0:
                raw_valid.append(acceptable(raw).cpu())
            idx = todo.nonzero(as_tuple=True)[0]
            cand = raw[idx]
            if project:  # bonds and angles together, then bonds alone (a tree: converges fast)
                cand = project_bonds(project_bonds(cand, pairs, targets[idx]), m0.bonds, m0.r0)
            good = (chirality(cand, m0.sp3) == hand0[idx]).all(-1)
            if project:
                good &= valid_frames(cand, m0.bonds, m0.r0)
            nxt[idx[good]] = cand[good]
            todo[idx[good]] = False
            if not todo.any():
                break
        rejected.append(todo.cpu())
        if relax is not None:
            seed_k = int(torch.randint(2**30, (1,), generator=gen))
            nxt, ok = relax(nxt, conditions, seed_k, jump == 0)
            nxt = nxt.to(device=device, dtype=torch.float32)
            relaxed.append(ok.cpu())
        x = nxt
        valid.append(acceptable(x).cpu())
        frames.append(x.cpu())
    return Rollout(
        torch.stack(frames),
        torch.stack(raw_valid),
        torch.stack(valid),
        time.perf_counter() - t0,
        torch.stack(rejected),
        torch.stack(relaxed) if relax is not None else None,
    )


def n_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["FlowConfig", "FlowEmulator", "Rollout", "rollout", "n_parameters"]
