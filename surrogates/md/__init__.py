"""The MD world model: a flow-matching GNN emulator that jumps far ahead in simulated time.

Modules: :mod:`~surrogates.md.graph` (graphs in plain torch), :mod:`~surrogates.md.egnn`
(the equivariant message-passing network), :mod:`~surrogates.md.flow` (conditional flow
matching, batched rollouts), :mod:`~surrogates.md.train` (training, checkpoints),
:mod:`~surrogates.md.heads` (property and cost heads), :mod:`~surrogates.md.emulation`
(the ensemble with its start frames, saved with the model), :mod:`~surrogates.md.data` (the data
set), :mod:`~surrogates.md.world_model` (:class:`MDEmulatorWorldModel`).
"""
