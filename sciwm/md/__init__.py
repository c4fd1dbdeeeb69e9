"""Molecular dynamics as domain knowledge: what the OpenMM connector runs and the emulator learns.

One concept per module, imported by the OpenMM connector (:mod:`lab_connectors.openmm_md`),
the emulator world model and its corrector (:mod:`surrogates.md`), the data flow
(:mod:`flows.md_data`) and the benchmark (:mod:`sciwm.bench.md`):

* :mod:`sciwm.md.systems` — :class:`~sciwm.md.systems.SystemSpec` (what to simulate: PDB,
  force field, solvent), :func:`~sciwm.md.systems.build_system`, backbone dihedral indices and
  the chemistry an emulator needs (:func:`~sciwm.md.systems.system_meta`);
* :mod:`sciwm.md.engine` — :class:`~sciwm.md.engine.RunConfig`,
  :func:`~sciwm.md.engine.simulate` (one Langevin run) and the choice of OpenMM platform;
* :mod:`sciwm.md.molecule` — :class:`~sciwm.md.molecule.Molecule`, the fixed chemistry of a
  system as plain tuples;
* :mod:`sciwm.md.observables` — the observables in NumPy (dihedrals, basins, histograms,
  Jensen–Shannon divergence, bond validity, the outcomes every run reports) and users'
  observables named by import path;
* :mod:`sciwm.md.torch_ops` — the same per-frame observables on batched torch tensors, for
  the emulator (tested against the NumPy ones).

Nothing here imports OpenMM or torch at import time except :mod:`~sciwm.md.torch_ops`
(OpenMM is imported inside the functions that need it).
"""
