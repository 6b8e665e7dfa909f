"""spikeflow.layers: time-aware blocks for time-first ``[T, B, ...]`` sequences.

* :class:`SeqToBatch` folds ``T`` into the batch for stateless layers (Conv, BN, pooling, Linear).
* :class:`TimeDropout` one dropout mask over all steps; :class:`StepDropout` a new mask per step
  (He2020's ``F.dropout``, optionally active in evaluation); :class:`VotingLayer` class-group averaging.
* Synapse filters of snn-iir with explicit state: :class:`DualExpSynapse`, :class:`LowPassSynapse`,
  :class:`DualExpReadout` (fused numba kernels on CPU), on the :class:`StatefulFilter` base.
* Recurrent baselines :class:`RNN`, :class:`LSTM`, :class:`GRU`, :class:`ConvRNN`, :class:`ConvLSTM`,
  :class:`ConvGRU`, all subclasses of :class:`RecurrentBaseline`.
* :class:`ASA` advanced spatial attention on membrane inputs (Yao et al. 2023).
* :class:`SparseLinear` an ``nn.Linear`` that skips the zeros of sparse (spike) inputs on the CPU.
"""
from spikeflow.layers.attention import ASA
from spikeflow.layers.conv_recurrent import (
    ConvGRU, ConvGRUCell, ConvLSTM, ConvLSTMCell, ConvRNN, ConvRNNCell,
)
from spikeflow.layers.dropout import (
    StepDropout, TimeDropout, step_dropout_mask, time_dropout, time_dropout_mask,
)
from spikeflow.layers.recurrent import (
    GRU, LSTM, RNN, HiddenState, LSTMState, RecurrentBaseline, RecurrentSpec,
)
from spikeflow.layers.seq_to_batch import SeqToBatch, fold_time, unfold_time
from spikeflow.layers.sparse_linear import SparseLinear
from spikeflow.layers.stateful import StatefulFilter
from spikeflow.layers.synapse import DualExpReadout, DualExpSynapse, LowPassSynapse
from spikeflow.layers.voting import VotingLayer

__all__ = [
    "SeqToBatch", "fold_time", "unfold_time",
    "TimeDropout", "time_dropout", "time_dropout_mask", "StepDropout", "step_dropout_mask",
    "VotingLayer",
    "StatefulFilter", "DualExpSynapse", "LowPassSynapse", "DualExpReadout",
    "RecurrentBaseline", "RecurrentSpec", "HiddenState", "LSTMState",
    "RNN", "LSTM", "GRU", "ConvRNN", "ConvLSTM", "ConvGRU",
    "ConvRNNCell", "ConvLSTMCell", "ConvGRUCell",
    "ASA",
    "SparseLinear",
]
