"""Integer arithmetic and hardware: what it takes to train and deploy a chip's exact integer network.

* :mod:`.spec`: the ``[fixed_point]`` options and the integer constants they fix (FixedPointSpec);
* :mod:`.arithmetic`: the fixed-point neuron (int8 weights, saturating integer states, Xylo shift or
  Loihi multiplier leak) as an arithmetic the network's layers compute with;
* :mod:`.grid`: int8 / int4 weight grids for the float network (float masters, per-layer scale);
* :mod:`.reference`: an independent numpy int64 reference of the fixed-point network;
* :mod:`.strategy`: EGGROLL with integer low-rank noise (``strategy.method = "eggroll_integer"``);
* :mod:`.hil`: hardware in the loop: the population evaluated by an external process or chip;
* :mod:`.export`: the NIR form of a fixed-point run; :mod:`.check`: reference vs JAX on a whole split.

The package imports none of its modules itself: they sit at different depths of the project's
one-way data flow (network, population, strategy, consumers; see docs/design.md).
"""
