"""Graphs of molecules in plain torch (no pyg-lib): edges, topological edge types, batching.

For a small molecule every pair of atoms is an edge (``full_graph``); larger systems use a
distance cut-off (``radius_graph``, ``torch.cdist`` plus a mask). Edge types are the
topological distance along bonds (1-2, 1-3, 1-4, further), which are invariant under rigid
motions and permutations of like atoms.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Topological distance classes: bonded, angle, dihedral, further.
N_EDGE_TYPES = 4


def full_graph(n: int, device: torch.device | None = None) -> Tensor:
    """All ordered pairs ``i != j`` of ``n`` nodes.

    Returns:
        A ``2 x n(n-1)`` long tensor (row 0 source ``j``, row 1 target ``i``).
    """
    idx = torch.arange(n, device=device)
    src, dst = torch.meshgrid(idx, idx, indexing="ij")
    mask = src != dst
    return torch.stack([src[mask], dst[mask]])


def radius_graph(x: Tensor, r: float, batch: Tensor | None = None) -> Tensor:
    """Pairs of nodes closer than ``r``, within the same graph of a batch.

    Args:
        x: A ``N x 3`` tensor of positions.
        r: Cut-off, same unit as ``x``.
        batch: A ``N`` long tensor of graph indices, or ``None`` for one graph.

    Returns:
        A ``2 x E`` long tensor (source, target), no self loops.
    """
    d = torch.cdist(x, x)
    mask = d < r
    mask.fill_diagonal_(False)
    if batch is not None:
        mask &= batch.unsqueeze(0) == batch.unsqueeze(1)
    src, dst = mask.nonzero(as_tuple=True)
    return torch.stack([src, dst])


def topological_distance(n: int, bonds: Tensor, max_hops: int = N_EDGE_TYPES - 1) -> Tensor:
    """Bond-graph distance between atoms, capped at ``max_hops + 1``.

    Args:
        n: Number of atoms.
        bonds: A ``n_bonds x 2`` long tensor.

    Returns:
        A ``n x n`` long tensor (0 on the diagonal).
    """
    adj = torch.zeros(n, n, dtype=torch.bool)
    adj[bonds[:, 0], bonds[:, 1]] = True
    adj[bonds[:, 1], bonds[:, 0]] = True
    dist = torch.full((n, n), max_hops + 1, dtype=torch.long)
    dist.fill_diagonal_(0)
    reach = torch.eye(n, dtype=torch.bool)
    for hop in range(1, max_hops + 1):
        reach_next = reach | ((reach.float() @ adj.float()) > 0)
        dist[reach_next & ~reach] = hop
        reach = reach_next
    return dist


def batch_edges(edge_index: Tensor, n_nodes: int, n_graphs: int) -> Tensor:
    """Repeat one graph's edges for ``n_graphs`` copies with offset node numbers.

    Args:
        edge_index: A ``2 x E`` tensor for one graph of ``n_nodes`` nodes.

    Returns:
        A ``2 x (n_graphs * E)`` tensor.
    """
    offsets = torch.arange(n_graphs, device=edge_index.device) * n_nodes
    return (edge_index.unsqueeze(1) + offsets.view(1, -1, 1)).reshape(2, -1)
