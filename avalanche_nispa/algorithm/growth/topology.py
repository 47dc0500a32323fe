"""Topological growth from network science: the Cannistraci-Hebb CH3-L3 link predictor.

Cannistraci-Hebb theory (Muscoloni et al., "Adaptive network automata modelling of
complex networks", Preprints 202012.0808, 2020; used as the regrowth rule of
Cannistraci-Hebb Training, CHT: Zhang, Zhao, Wu, Muscoloni & Cannistraci,
"Epitopological learning and Cannistraci-Hebb network shape intelligence
brain-inspired theory for ultra-sparse advantage in deep learning", ICLR 2024)
predicts the missing link (u, v) of a bipartite layer graph from the paths of length
3, u–a–b–v, that it would close: each path counts ``1 / sqrt((1 + e_a)(1 + e_b))``,
where ``e_z`` is the number of *external* links of the intermediate node z, links
that leave the local community the paths form. Nodes that link mostly inside the
community make strong paths; hubs that link everywhere make weak ones. No gradient
or data is needed: the rule reads the connection mask alone.

In a bipartite layer graph the community has a closed form: for a path u–a–b–v, the
neighbours of the source a inside it are u and the common targets of a and v, and
those of the target b are v and the common sources of b and u. So
``1 + e_a = deg(a) − |N(a) ∩ N(v)|`` and ``1 + e_b = deg(b) − |N(b) ∩ N(u)|``, and

    S[u, v] = Σ_b G[u, b] A[b, v] Σ_{a ∈ N(u)} A[b, a] F[a, v],
    F = 1 / sqrt(deg_a − AᵀA),   G = 1 / sqrt(deg_b − AAᵀ)

on the ``out x in`` connection mask A: one ``out x |N(u)| x in`` matrix product per
scored target u, O(out · nnz(A) · in) for a whole layer, computed only for the
targets growth may fill (plastic units) and only for layers that grow. This is the exact CH3-L3, not the later matrix approximation of
the CHT authors (CH2-L3n, "Brain network science modelling of sparse neural
networks enables Transformers and LLMs to perform as fully connected", NeurIPS 2025).
Ties (for instance all the zero scores of pairs no 3-path joins) are broken at random.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .base import GrowthRequest, free_positions, growth_rule, top_scoring

__all__ = ["ch3_l3_scores", "ch3l3"]


def ch3_l3_scores(connection_mask: Tensor, rows: Optional[Tensor] = None) -> Tensor:
    """``(out, in)`` CH3-L3 scores of the target–source pairs of the bipartite graph
    ``connection_mask`` (targets × sources), float32. ``rows``: bool ``(out,)``, the
    targets to score (default: all); the other rows are 0."""
    a = connection_mask.to(torch.float32)
    out_units, in_units = a.shape
    scores = torch.zeros(out_units, in_units, dtype=torch.float32, device=a.device)
    # 1 + e_a for a path u–a–b–v depends on (a, v) only, 1 + e_b on (u, b) only; off
    # the paths the clamp only keeps the (unused) entries finite
    source_factor = torch.rsqrt((a.sum(dim=0)[:, None] - a.T @ a).clamp_min(1.0))  # F[a, v]
    target_factor = torch.rsqrt((a.sum(dim=1)[None, :] - a @ a.T).clamp_min(1.0))  # G[u, b]
    targets = range(out_units) if rows is None else rows.nonzero().squeeze(1).tolist()
    for u in targets:
        sources = connection_mask[u].nonzero().squeeze(1)  # N(u)
        if sources.numel() == 0:
            continue
        through = a[:, sources] @ source_factor[sources]  # [b, v]: Σ_a A[b, a] F[a, v]
        scores[u] = target_factor[u] @ (a * through)  # Σ_b G[u, b] A[b, v] (...)
    return scores


@growth_rule("ch3l3")
def ch3l3(request: GrowthRequest) -> Tensor:
    """The absent connections into plastic units with the highest CH3-L3 score."""
    scores = ch3_l3_scores(request.connection_mask, rows=request.target_plastic)
    return top_scoring(free_positions(request), scores, request.count, request.generator)
