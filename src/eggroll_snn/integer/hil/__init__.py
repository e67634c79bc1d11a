"""Hardware in the loop: member fitness computed by an external evaluator (a chip, or a simulator).

With ``fixed_point.evaluator = "<command>"`` (and ``network.neuron = "fixed_point"``) the trainer
starts the command once per session and asks it, every generation, for the read-out values of
the whole population on the generation's minibatch; the fitness, the strategy's update,
validation and the test evaluation stay in the trainer (validation and test use the in-process
integer network, which is bit-identical to the reference evaluator, tested).

Protocol (framing in :mod:`.protocol`: ``b"ESNNHIL1"``, an 8-byte little-endian length, an
uncompressed ``.npz`` whose ``header`` array holds a JSON object) over the process's stdin
(requests) and stdout (replies); stderr is free for the evaluator's log:

1. ``hello`` -> ``ready`` (allowed at least 120 s: the process starts). The header's ``arithmetic`` is
   :meth:`eggroll_snn.integer.arithmetic.FixedPointSpec.record` plus ``layers``: threshold, state_bits,
   leak (``"shift"`` or ``"multiplier"``), membrane/synapse/readout leak parameters, reset, and
   the equations as text.
2. ``evaluate`` -> ``readout``. Arrays: ``frames`` (B, T, in) event counts; per layer ``i`` (read-out
   last) the centre ``layer{i}_weight`` (out, in) and ``layer{i}_bias`` (out,), and the N
   members' integer perturbations ``layer{i}_a`` (N, out, r), ``layer{i}_b`` (N, in, r),
   ``layer{i}_sign`` (N,) and ``layer{i}_bias_noise`` (N, out). Member n's integer weight is
   ``layer{i}_weight + sign[n] * a[n] @ b[n].T`` and its bias ``sat(bias + bias_noise[n])``.
   All arrays are integers in the narrowest of int8/int16/int32 that holds them. The reply's
   array ``readout`` (N, B, C) holds each member's integer read-out ``sum_t U[t]``.
3. ``close``: the evaluator exits (also at the end of its stdin).

Any request may be answered with ``{"type": "error", "message": ...}``; the trainer then stops
with that message. A crash (exit), no reply within ``fixed_point.evaluator_timeout_s``, or bytes
that are not a reply stop training with an :class:`~eggroll_snn.integer.hil.client.EvaluatorError`
naming the command; checkpoints already written are kept, and ``--resume`` continues exactly
(the evaluator options may change on resume, e.g. to the in-process path: the results are the same).

The reference evaluator, ``python -m eggroll_snn.integer.hil.reference_evaluator``, is the numpy int64
reference (:mod:`eggroll_snn.integer.reference`) behind this protocol.

The trainer's side is :mod:`eggroll_snn.integer.hil.client` (imported on use, so that an evaluator process
that imports :mod:`eggroll_snn.integer.hil.protocol` does not load JAX).
"""
