"""The run predictor: description -> LM embedding (+ numbers, + partial curve) -> calibrated
Gaussian predictions of the final metric and the log train time.

This is the model behind :class:`surrogates.mlrun.model.MLRunWorldModel` and the benchmark.
Inputs per run:

- text: the encoder's embedding of the learner segment and of the data segment
  (:mod:`surrogates.mlrun.describe`), concatenated and standardised per dimension (decoder
  embeddings are nearly collinear without it);
- numeric: log2 training size, the data set's meta-features (log or fraction), any extra
  numbers, standardised;
- curve: :func:`surrogates.mlrun.curve.curve_features` of the observed prefix, if any.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from sciwm.errors import WorldModelError
from sciwm.lcdb.meta import META_FEATURES, meta_vector
from surrogates.mlrun.calibration import FULL_FRACTION, SizeCalibrator
from surrogates.mlrun.curve import N_CURVE_FEATURES, curve_features
from surrogates.mlrun.describe import segments
from surrogates.mlrun.encoders import TextEncoder
from surrogates.mlrun.extrapolation import far_reasons
from surrogates.mlrun.heads import DeepEnsemble, HeadConfig, Inputs, cpu_threads
from surrogates.mlrun.neighbours import NeighbourBank
from surrogates.mlrun.record import RunRecord

#: Standardised text features are clipped to this many standard deviations.
TEXT_CLIP = 5.0


class RunPredictor:
    """Calibrated predictions of ``t`` targets of runs.

    Args:
        encoder: Text encoder (wrap it in a :class:`~surrogates.mlrun.encoders.CachedEncoder`).
        targets: Target names, e.g. ``["score", "log_time"]``.
        config: Ensemble settings.
        use_meta: Feed meta-features as numbers (they are in the text either way).
        data_text: Embed the data segment too (else only the learner segment is embedded and
            the data set enters through its meta-features): with few data sets, the data
            text acts as an identifier that the heads memorise.
        device: ``"cuda"`` or ``"cpu"`` (default: CUDA when present).
        neighbours: Stack :class:`~surrogates.mlrun.neighbours.NeighbourBank` features of
            this many nearest training data sets onto the numeric inputs (0: none).
    """

    def __init__(
        self,
        encoder: TextEncoder,
        targets: Sequence[str],
        config: HeadConfig | None = None,
        use_meta: bool = True,
        data_text: bool = False,
        device: str | None = None,
        neighbours: int = 0,
    ) -> None:
        self.encoder = encoder
        self.targets = list(targets)
        self.config = config or HeadConfig()
        self.use_meta = use_meta
        self.data_text = data_text
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.ensemble: DeepEnsemble | None = None
        self.calibrators: list[SizeCalibrator] = []
        self.stats: dict[str, Tensor] = {}
        self.neighbours = int(neighbours)
        self.bank: NeighbourBank | None = None

    # -- features --------------------------------------------------------------------------
    def text_features(self, records: Sequence[RunRecord]) -> Tensor:
        """``n x e`` (or ``n x 2e`` with ``data_text``) raw text embeddings.

        Each distinct learner (and data set) is rendered and embedded once.
        """
        width = (2 if self.data_text else 1) * self.encoder.dim
        if not records:
            return torch.zeros(0, width)
        keys: dict[tuple, int] = {}
        texts: list[str] = []
        index = np.empty((len(records), 2 if self.data_text else 1), dtype=np.int64)
        for i, r in enumerate(records):
            hyper = tuple(sorted((k, str(v)) for k, v in r.hyperparameters.items()))
            key = ("learner", r.learner, hyper)
            if key not in keys:
                keys[key] = len(texts)
                texts.append(segments(r.learner, r.dataset, None, r.hyperparameters)[0])
            index[i, 0] = keys[key]
            if self.data_text:
                key = ("data", r.dataset, tuple(sorted(r.meta.items())))
                if key not in keys:
                    keys[key] = len(texts)
                    texts.append(segments(r.learner, r.dataset, r.meta or None)[1])
                index[i, 1] = keys[key]
        vectors = torch.from_numpy(self.encoder.encode(texts))
        return vectors[torch.from_numpy(index)].reshape(len(records), width)

    def numeric_features(self, records: Sequence[RunRecord]) -> Tensor:
        """``n x m`` raw numeric features."""
        rows = []
        for r in records:
            if not (math.isfinite(r.anchor) and r.anchor > 0):
                raise WorldModelError(f"training size must be positive and finite, got {r.anchor}")
            row = [math.log2(r.anchor)]
            if self.use_meta:
                if not r.meta:
                    raise WorldModelError(
                        f"run on data set {r.dataset!r} has no meta-features; give them "
                        "(sciwm.lcdb.meta.meta_features) or set use_meta=False"
                    )
                row += meta_vector(r.meta)
            row += [float(v) for v in r.extra]
            rows.append(row)
        out = torch.tensor(rows, dtype=torch.float32).reshape(len(records), -1)
        if self.neighbours and records:
            out = torch.cat([out, self.neighbour_features(records)], 1)
        return out

    def neighbour_features(self, records: Sequence[RunRecord]) -> Tensor:
        """``n x w`` raw :class:`~surrogates.mlrun.neighbours.NeighbourBank` features."""
        if self.bank is None:
            raise WorldModelError("neighbour features need a trained predictor")
        return torch.from_numpy(self.bank.features(*self._bank_keys(records))).float()

    def _bank_keys(self, records: Sequence[RunRecord]) -> tuple[list, list, np.ndarray]:
        """Learner keys (short name and settings), data set names and positions
        (meta-features, log2 size) of runs."""
        keys = [
            r.learner.rsplit(".", 1)[-1]
            + f"|{sorted((k, str(v)) for k, v in r.hyperparameters.items())}"
            for r in records
        ]
        metas: dict[int, list[float]] = {}  # runs of one data set share its meta dict
        pos = []
        for r in records:
            if self.use_meta and r.meta:
                if id(r.meta) not in metas:
                    metas[id(r.meta)] = meta_vector(r.meta)
                row = [*metas[id(r.meta)], math.log2(r.anchor)]
            else:
                row = [math.log2(r.anchor)]
            pos.append(row)
        return keys, [r.dataset for r in records], np.asarray(pos, float)

    @staticmethod
    def curve_features(records: Sequence[RunRecord]) -> Tensor:
        """``n x N_CURVE_FEATURES`` curve features (zeros without a curve)."""
        rows = []
        for r in records:
            if r.curve is None:
                rows.append(np.zeros(N_CURVE_FEATURES, np.float32))
            else:
                a, s, t = r.curve
                rows.append(curve_features(a, s, t, r.anchor))
        c = torch.from_numpy(np.stack(rows)) if rows else torch.zeros(0, N_CURVE_FEATURES)
        return c.float() * torch.tensor([1, 1, 0.2, 1, 1, 1, 0.2, 0.3])

    def raw_inputs(self, records: Sequence[RunRecord]) -> Inputs:
        """Unstandardised inputs of ``records``."""
        return Inputs(
            self.text_features(records),
            self.numeric_features(records),
            self.curve_features(records),
        )

    def standardise(self, x: Inputs) -> Inputs:
        """Apply the training statistics (differentiable in ``x.numeric``)."""
        s = self.stats
        return Inputs(
            ((x.text - s["text_mean"]) / s["text_std"]).clamp(-TEXT_CLIP, TEXT_CLIP),
            (x.numeric - s["num_mean"]) / s["num_std"],
            x.curve,
        )

    # -- training sizes (what the calibration is conditioned on) ---------------------------
    def record_sizes(self, records: Sequence[RunRecord]) -> tuple[Tensor, Tensor]:
        """``(log2_size, full)`` of runs: ``n`` log2 training sizes and ``n`` flags for runs
        at their data set's full size (at least :data:`~surrogates.mlrun.calibration.FULL_FRACTION`
        of its instances; none without meta-features)."""
        size = torch.tensor([math.log2(r.anchor) for r in records], dtype=torch.double)
        full = torch.tensor(
            [
                bool(self.use_meta and r.meta)
                and r.anchor >= FULL_FRACTION * float(r.meta["NumberOfInstances"])
                for r in records
            ],
            dtype=torch.bool,
        )
        return size, full

    def input_sizes(self, x: Inputs) -> tuple[Tensor, Tensor]:
        """:meth:`record_sizes` read back from ``n`` standardised inputs (the numeric block
        starts with the log2 training size, then the log instance count with meta-features)."""
        s = self.stats
        num = x.numeric.detach().double()
        size = num[:, 0] * s["num_std"][0].double() + s["num_mean"][0].double()
        if not self.use_meta:
            return size, torch.zeros(len(num), dtype=torch.bool)
        log_n = num[:, 1] * s["num_std"][1].double() + s["num_mean"][1].double()
        return size, size >= math.log2(FULL_FRACTION) + log_n / math.log(2)

    # -- learning --------------------------------------------------------------------------
    def fit(
        self,
        records: Sequence[RunRecord],
        y: Tensor,
        calib_records: Sequence[RunRecord] | None = None,
        calib_y: Tensor | None = None,
    ) -> list[float]:
        """Train the ensemble and calibrate it.

        Args:
            records: ``n`` training runs.
            y: A ``n x t`` tensor of targets (NaN = missing).
            calib_records: Held-out runs for split-conformal calibration, conditioned on the
                training size (:class:`~surrogates.mlrun.calibration.SizeCalibrator`);
                without them the out-of-bag predictions of the bootstrap ensemble are used.
            calib_y: Their ``n_c x t`` targets.

        Returns:
            The ensemble's loss trace summary (see :meth:`DeepEnsemble.fit`).
        """
        if len(records) == 0:
            raise WorldModelError("no runs to train on")
        y = torch.as_tensor(y, dtype=torch.float32).reshape(len(records), len(self.targets))
        if self.neighbours:
            keys, names, pos = self._bank_keys(records)
            base = np.array([np.nan if r.curve is None else r.curve[1][-1] for r in records])
            self.bank = NeighbourBank(
                keys, names, pos, y.double().numpy(), self.neighbours, base.astype(float)
            )
        raw = self.raw_inputs(records)
        self.stats = {
            "text_mean": raw.text.mean(0),
            # Dimensions that never vary in training get the average spread, so an unseen
            # text cannot blow up to values / 1e-6.
            "text_std": _floor(raw.text.std(0, unbiased=False)),
            "num_mean": raw.numeric.mean(0),
            # A number that never varies in training (e.g. a missing-value flag) keeps unit
            # spread, so a run where it differs moves by one, not by 1e6.
            "num_std": _unit_if_constant(raw.numeric.std(0, unbiased=False)),
        }
        x = self.standardise(raw)
        self.stats["num_min"] = x.numeric.min(0).values
        self.stats["num_max"] = x.numeric.max(0).values
        self.stats["text_bank"] = _unique_rows(raw.text)
        self.ensemble = DeepEnsemble(
            raw.text.shape[1], raw.numeric.shape[1], len(self.targets), self.config
        )
        groups: dict[tuple[str, float], int] = {}
        group = torch.tensor(
            [groups.setdefault((r.dataset, r.anchor), len(groups)) for r in records]
        )
        losses = self.ensemble.fit(x, y, self.device, group)
        self.ensemble.eval()
        if calib_records is not None and calib_y is not None and len(calib_records):
            mean, var = self._predict_inputs(self.standardise(self.raw_inputs(calib_records)))
            yc = torch.as_tensor(calib_y, dtype=torch.float32).reshape(mean.shape)
            ok = torch.ones(len(mean), dtype=torch.bool)
            size, full = self.record_sizes(calib_records)
        else:
            mean, var, ok = self.ensemble.out_of_bag(x)
            yc = y
            size, full = self.record_sizes(records)
        self.calibrators = []
        for j in range(len(self.targets)):
            rows = ok & ~torch.isnan(yc[:, j])
            self.calibrators.append(
                SizeCalibrator.from_residuals(
                    yc[rows, j].double(),
                    mean[rows, j].double(),
                    var[rows, j].sqrt().double(),
                    size[rows],
                    full[rows],
                )
            )
        return losses

    # -- querying --------------------------------------------------------------------------
    def _require(self) -> DeepEnsemble:
        if self.ensemble is None:
            raise WorldModelError("the run predictor has not been trained")
        return self.ensemble

    def _predict_inputs(self, x: Inputs) -> tuple[Tensor, Tensor]:
        return self._require()(x)

    def predict_standardised(self, x: Inputs) -> tuple[Tensor, Tensor]:
        """Calibrated ``(mean, std)``, each ``n x t``, from standardised inputs (differentiable;
        the variance scale is that of the run's training-size bin)."""
        mean, var = self._predict_inputs(x)
        size, full = self.input_sizes(x)
        scale = torch.stack([c.scale(size, full) for c in self.calibrators], -1).to(mean.dtype)
        return mean, var.clamp_min(1e-12).sqrt() * scale

    def predict(self, records: Sequence[RunRecord]) -> tuple[Tensor, Tensor, Tensor]:
        """Calibrated predictions.

        Returns:
            ``(mean, std, far)``: ``n x t``, ``n x t`` and a ``n`` bool tensor flagging runs
            far from the training data (numbers out of range, or unseen text).
        """
        self._require()
        if not records:
            t = len(self.targets)
            return torch.zeros(0, t), torch.zeros(0, t), torch.zeros(0, dtype=torch.bool)
        raw = self.raw_inputs(records)
        x = self.standardise(raw)
        with torch.no_grad(), cpu_threads(1):
            mean, std = self.predict_standardised(x)
        return mean, std, self.far(raw, x)

    def far(self, raw: Inputs, x: Inputs) -> Tensor:
        """``n`` flags: runs outside the training data (see :meth:`far_reasons`)."""
        return torch.tensor([r is not None for r in self.far_reasons(raw, x)], dtype=torch.bool)

    def far_reasons(self, raw: Inputs, x: Inputs) -> list[str | None]:
        """Why each of ``n`` runs is outside the training data, or ``None`` (see
        :func:`surrogates.mlrun.extrapolation.far_reasons`)."""
        return far_reasons(self.stats, self.encoder.dim, self.numeric_names(), raw, x)

    def numeric_names(self) -> list[str]:
        """Names of the numeric inputs, in order (for messages)."""
        names = ["log2 training size"]
        if self.use_meta:
            names += list(META_FEATURES)
        width = int(self.stats["num_mean"].numel()) if self.stats else len(names)
        names += [f"numeric input {j}" for j in range(len(names), width)]
        return names

    def interval_halfwidth(
        self, target: int, std: Tensor, level: float, log2_size: Tensor, full: Tensor
    ) -> Tensor:
        """``n`` half-widths of the calibrated intervals at ``level``.

        Args:
            target: Target index.
            std: ``n`` calibrated stds (:meth:`predict`).
            level: Interval level in (0, 1).
            log2_size, full: The runs' :meth:`record_sizes` (or :meth:`input_sizes`).
        """
        cal = self.calibrators[target]
        ratio = cal.quantile(level, log2_size, full) / cal.scale(log2_size, full)
        return std * ratio.to(std.dtype)

    # -- persistence -----------------------------------------------------------------------
    def state(self) -> dict[str, Tensor]:
        """Tensors that rebuild the trained predictor (with the same encoder and config)."""
        ens = self._require()
        out = {f"ensemble.{k}": v.detach().clone() for k, v in ens.state_dict().items()}
        out.update({f"stats.{k}": v.clone() for k, v in self.stats.items()})
        for j, cal in enumerate(self.calibrators):
            out.update({f"calib.{j}.{k}": v for k, v in cal.state().items()})
        if self.bank is not None:
            out.update({f"bank.{k}": v for k, v in self.bank.state().items()})
        return out

    def load_state(self, tensors: Mapping[str, Tensor], text_dim: int, numeric_dim: int) -> None:
        """Inverse of :meth:`state`."""
        self.stats = {k[6:]: v for k, v in tensors.items() if k.startswith("stats.")}
        ens = DeepEnsemble(text_dim, numeric_dim, len(self.targets), self.config)
        oob = tensors["ensemble.oob_mask"]
        ens.oob_mask = torch.zeros_like(oob)
        ens.load_state_dict({k[9:]: v for k, v in tensors.items() if k.startswith("ensemble.")})
        ens.eval()
        self.ensemble = ens
        self.calibrators = []
        for j in range(len(self.targets)):
            prefix = f"calib.{j}."
            cal = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            self.calibrators.append(SizeCalibrator.from_state(cal))
        bank = {k[5:]: v for k, v in tensors.items() if k.startswith("bank.")}
        self.bank = NeighbourBank.from_state(bank) if bank else None
        self.neighbours = self.bank.k if self.bank is not None else 0


def _unit_if_constant(std: Tensor) -> Tensor:
    return torch.where(std < 1e-6, torch.ones_like(std), std)


def _floor(std: Tensor) -> Tensor:
    return std.clamp_min(float(std.mean()) + 1e-6)


def _unique_rows(x: Tensor) -> Tensor:
    return torch.unique(x.round(decimals=5), dim=0)
