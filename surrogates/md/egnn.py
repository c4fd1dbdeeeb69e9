"""An E(3)-equivariant message-passing network that outputs one 3-vector per atom.

Messages depend only on invariants (atom kinds, topological edge types, inter-atomic
distances in the current configuration ``xc`` and in the generated one ``xs``, the
conditions and the flow time), and the output is a weighted sum of relative position vectors
``xs_i - xs_j`` and ``xc_i - xc_j``. Hence rotating or translating both inputs rotates the
output (and leaves it unchanged under translation); permuting like atoms permutes it. This is
the EGNN construction of Satorras et al. (2021), written with ``torch_geometric``'s
:class:`~torch_geometric.nn.MessagePassing`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from surrogates.md.graph import N_EDGE_TYPES


@dataclass(frozen=True)
class NetConfig:
    """Size of the velocity network.

    Attributes:
        n_kinds: Number of atom kinds (elements) embedded.
        n_conditions: Length of the condition vector (temperature, …, log τ).
        hidden: Width of node and edge features.
        layers: Message-passing blocks before the vector read-out.
        n_rbf: Radial basis functions per distance.
        cutoff: Largest distance resolved by the radial basis, nm.
        edge_deltas: Also give each edge the change of its length from the current
            configuration, ``tanh((|xs_ij| - |xc_ij|) / w)`` at ``w`` = 0.01 and 0.05 nm: the
            radial basis (width ``cutoff / n_rbf``) is too coarse to tell a bond 10 % too long
            from a good one, and these features resolve it.
    """

    n_kinds: int = 8
    n_conditions: int = 2
    hidden: int = 48
    layers: int = 3
    n_rbf: int = 10
    cutoff: float = 1.2
    edge_deltas: bool = False


def mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    """Two-layer perceptron with SiLU."""
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.SiLU(), nn.Linear(n_hidden, n_out))


class RadialBasis(nn.Module):
    """Gaussian radial basis of distances: ``E`` → ``E x n_rbf``."""

    def __init__(self, n_rbf: int, cutoff: float) -> None:
        super().__init__()
        self.register_buffer("centres", torch.linspace(0.0, cutoff, n_rbf))
        self.width = cutoff / n_rbf

    def forward(self, d: Tensor) -> Tensor:
        return torch.exp(-(((d.unsqueeze(-1) - self.centres) / self.width) ** 2))


class EquivariantBlock(MessagePassing):
    """One round of invariant messages.

    ``m_ij = SiLU(A h_i + B h_j + C e_ij)``; ``h_i += φ_h(h_i, Σ_j m_ij)``. The per-edge work is
    one small projection of the edge features: the node projections are computed once per
    node, and the output linear map is applied after the sum (it commutes with it).
    """

    def __init__(self, hidden: int, edge_dim: int) -> None:
        super().__init__(aggr="add")
        self.lin_i = nn.Linear(hidden, hidden)
        self.lin_j = nn.Linear(hidden, hidden, bias=False)
        self.lin_e = nn.Linear(edge_dim, hidden, bias=False)
        self.node_mlp = mlp(2 * hidden, hidden, hidden)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, h: Tensor, edge_index: Tensor, e: Tensor) -> Tensor:
        """Args: h ``N x H``; edge_index ``2 x E``; e ``E x D``. Returns ``N x H``."""
        agg = self.propagate(edge_index, a=self.lin_i(h), b=self.lin_j(h), c=self.lin_e(e))
        return h + self.node_mlp(torch.cat([self.norm(h), agg / 16.0], dim=-1))

    def message(self, a_i: Tensor, b_j: Tensor, c: Tensor) -> Tensor:
        return nn.functional.silu(a_i + b_j + c)


class VectorReadout(MessagePassing):
    """Equivariant vectors: ``v_i = Σ_j a_ij (xs_i - xs_j) + b_ij (xc_i - xc_j)``.

    The invariant weights ``(a_ij, b_ij) = W SiLU(A h_i + B h_j + C e_ij)``.
    """

    def __init__(self, hidden: int, edge_dim: int) -> None:
        super().__init__(aggr="add")
        self.lin_i = nn.Linear(hidden, hidden)
        self.lin_j = nn.Linear(hidden, hidden, bias=False)
        self.lin_e = nn.Linear(edge_dim, hidden, bias=False)
        self.out = nn.Linear(hidden, 2)

    def forward(self, h: Tensor, edge_index: Tensor, e: Tensor, xs: Tensor, xc: Tensor) -> Tensor:
        """Args: h ``N x H``; xs, xc ``N x 3``. Returns ``N x 3``."""
        return self.propagate(
            edge_index, a=self.lin_i(h), b=self.lin_j(h), c=self.lin_e(e), xs=xs, xc=xc
        )

    def message(
        self,
        a_i: Tensor,
        b_j: Tensor,
        c: Tensor,
        xs_i: Tensor,
        xs_j: Tensor,
        xc_i: Tensor,
        xc_j: Tensor,
    ) -> Tensor:
        w = self.out(nn.functional.silu(a_i + b_j + c))
        return w[:, :1] * (xs_i - xs_j) + w[:, 1:2] * (xc_i - xc_j)


class VelocityNet(nn.Module):
    """The flow-matching velocity field ``v(xs | xc, conditions, s)``."""

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        h = config.hidden
        self.embed = nn.Embedding(config.n_kinds, h)
        self.cond = mlp(config.n_conditions + 3, h, h)
        self.node_in = mlp(2 * h + 1, h, h)
        self.rbf = RadialBasis(config.n_rbf, config.cutoff)
        edge_dim = N_EDGE_TYPES + 2 * config.n_rbf + (2 if config.edge_deltas else 0)
        self.blocks = nn.ModuleList(EquivariantBlock(h, edge_dim) for _ in range(config.layers))
        self.readout = VectorReadout(h, edge_dim)

    def forward(
        self,
        xs: Tensor,
        xc: Tensor,
        kinds: Tensor,
        cond: Tensor,
        s: Tensor,
        edge_index: Tensor,
        edge_type: Tensor,
        batch: Tensor,
    ) -> Tensor:
        """Velocity at flow time ``s``.

        Args:
            xs: ``N x 3`` generated positions at flow time ``s`` (all graphs stacked).
            xc: ``N x 3`` current positions (the state the jump starts from).
            kinds: ``N`` long tensor of atom kinds.
            cond: ``B x C`` conditions per graph.
            s: ``B`` flow times in [0, 1].
            edge_index: ``2 x E`` (source, target).
            edge_type: ``E`` long tensor of topological edge types.
            batch: ``N`` graph index of each node.

        Returns:
            ``N x 3`` velocities.
        """
        src, dst = edge_index
        ds = (xs[dst] - xs[src]).norm(dim=-1)
        dc = (xc[dst] - xc[src]).norm(dim=-1)
        parts = [
            nn.functional.one_hot(edge_type, N_EDGE_TYPES).to(xs.dtype),
            self.rbf(ds),
            self.rbf(dc),
        ]
        if self.config.edge_deltas:
            delta = (ds - dc).unsqueeze(-1)
            parts.append(torch.tanh(delta / torch.tensor([0.01, 0.05], dtype=xs.dtype)))
        e = torch.cat(parts, dim=-1)
        t = s.unsqueeze(-1)
        c = self.cond(torch.cat([cond, t, torch.sin(torch.pi * t), torch.cos(torch.pi * t)], -1))
        drift = (xs - xc).norm(dim=-1, keepdim=True)
        h = self.node_in(torch.cat([self.embed(kinds), c[batch], drift], dim=-1))
        for block in self.blocks:
            h = block(h, edge_index, e)
        return self.readout(h, edge_index, e, xs, xc)
