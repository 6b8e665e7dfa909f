"""Hook-based metrics: firing rates, NASFR, synaptic operations, energy and model complexity.

    >>> import spikeflow as sf
    >>> with sf.metrics.SpikeRecorder(model) as rec:            # doctest: +SKIP
    ...     model(x)                                            # x: [T, B, ...]
    >>> sf.metrics.firing_rates(rec), sf.metrics.nasfr(rec)     # doctest: +SKIP
    >>> sf.metrics.synops(model, x)                             # doctest: +SKIP
    {'ac': ..., 'mac': ...}
    >>> print(sf.summary(model, x))       # per-layer table  # doctest: +SKIP

Models are never edited: every measurement is a forward hook removed afterwards.
"""
from spikeflow.metrics.complexity import (
    connection_sparsity, count_parameters, measure_latency, memory_footprint,
)
from spikeflow.metrics.energy import PRESETS, EnergyModel, energy_pj
from spikeflow.metrics.evaluate import (
    evaluate_metrics, neuron_taus, read_metrics_json, write_metrics_json,
)
from spikeflow.metrics.firing import (
    activation_sparsity, activation_sparsity_by_layer, firing_rates, firing_rates_per_step,
    layer_summary, nasfr,
)
from spikeflow.metrics.recorder import LayerRecord, SpikeRecorder, all_reduce_records, find_layers
from spikeflow.metrics.recurrent_ops import (
    conv_dense_macs, conv_rnn_macs_per_step, conv_taps, rnn_macs_per_step,
)
from spikeflow.metrics.fanout import conv_fanout_map, fanout_map, is_spike_tensor, spike_kind
from spikeflow.metrics.model_summary import LayerRow, ModelSummary, summary
from spikeflow.metrics.synops import SynOpCounter, count_synops, synops

__all__ = [
    "SpikeRecorder", "LayerRecord", "find_layers", "all_reduce_records",
    "firing_rates", "firing_rates_per_step", "nasfr", "activation_sparsity",
    "activation_sparsity_by_layer", "layer_summary",
    "SynOpCounter", "synops", "count_synops", "conv_fanout_map", "fanout_map", "is_spike_tensor",
    "spike_kind",
    "rnn_macs_per_step", "conv_rnn_macs_per_step", "conv_dense_macs", "conv_taps",
    "EnergyModel", "PRESETS", "energy_pj",
    "count_parameters", "memory_footprint", "measure_latency", "connection_sparsity",
    "evaluate_metrics", "write_metrics_json", "read_metrics_json", "neuron_taus",
    "summary", "ModelSummary", "LayerRow",
]
