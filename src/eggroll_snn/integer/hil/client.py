"""The trainer's side of the HIL protocol: an external evaluator process and the population hook.

:class:`ExternalEvaluator` starts the evaluator command, greets it with the network's arithmetic
and sends one ``evaluate`` request per generation, with a deadline. Every failure becomes an
:class:`EvaluatorError` that names the command and what happened (exit status and the end of its
stderr, the timeout, or what was wrong with the reply). :func:`external_population` makes the
``evaluate(params, perturbations, inputs, labels)`` hook of
:func:`eggroll_snn.training.step.make_generation_step` from it: the integer centre and the members'
integer perturbations are formed inside the compiled step and handed to the process through
``jax.experimental.io_callback``; the fitness is computed from the returned read-out values exactly
as the in-process path computes it.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shlex
import subprocess
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback
from eggroll_snn.integer.arithmetic import integer_inputs, integer_parameters, integer_perturbation, readout_logits
from eggroll_snn.errors import TrainingError
from eggroll_snn.integer.hil.protocol import MAGIC, ProtocolError, decode_payload, decode_prefix, encode
from eggroll_snn.population import member_losses


#: The greeting may take at least this long (the process starts, imports, sets up its device).
STARTUP_TIMEOUT_S = 120.0


class EvaluatorError(TrainingError):
    """The external evaluator crashed, timed out or answered with something that is not a valid reply."""


class ExternalEvaluator:
    """One evaluator process speaking the protocol on its stdin/stdout.

    Args:
      command: the command line (split like a shell would, no shell involved).
      arithmetic: the ``hello`` record: :meth:`FixedPointSpec.record` plus ``"layers"``.
      timeout_s: the longest wait for one reply.
    """

    def __init__(self, command: str, arithmetic: dict, timeout_s: float):
        self.command, self.timeout_s = command, float(timeout_s)
        self.state_bits = int(arithmetic["state_bits"])
        self.interrupted = False  # a Ctrl-C arrived during a request
        self.started = False  # the greeting was answered: checkpoints may exist from here on
        self.failure: EvaluatorError | None = None
        self.requests, self.seconds = 0, 0.0
        self._stderr = tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen(
                shlex.split(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr
            )
        except OSError as error:
            raise EvaluatorError(f"cannot start the external evaluator {command!r} (fixed_point.evaluator): {error}") from None
        # Starting a process (imports, a chip's setup) may take longer than one reply.
        header, _ = self._exchange(
            {"type": "hello", "arithmetic": arithmetic}, {}, "the greeting", max(self.timeout_s, STARTUP_TIMEOUT_S)
        )
        if header["type"] != "ready":
            raise self._fail(f"answered the greeting with {header!r} instead of 'ready'")
        self.started = True

    def _fail(self, what: str) -> EvaluatorError:
        self._stderr.seek(0)
        tail = self._stderr.read()[-800:].decode("utf-8", "replace").strip()
        message = f"external evaluator {self.command!r} {what}"
        if tail:
            message += f"; the end of its stderr: {tail!r}"
        after = (
            "Training stopped; the last checkpoint is kept: fix the evaluator and resume the run with --resume"
            if self.started
            else "Training did not start: fix the evaluator (fixed_point.evaluator) and run again"
        )
        self.failure = EvaluatorError(f"{message}. {after}")
        self.close(kill=True)
        return self.failure

    def _read_exact(self, count: int, deadline: float, what: str, timeout_s: float) -> bytes:
        chunks, received = [], 0
        stream = self._process.stdout
        with selectors.DefaultSelector() as selector:
            selector.register(stream, selectors.EVENT_READ)
            while received < count:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise self._fail(f"did not answer {what} within {timeout_s:g} s (fixed_point.evaluator_timeout_s)")
                chunk = os.read(stream.fileno(), min(count - received, 1 << 20))
                if not chunk:
                    code = self._process.wait(timeout=5)
                    raise self._fail(f"exited with status {code} during {what}")
                chunks.append(chunk)
                received += len(chunk)
        return b"".join(chunks)

    def _exchange(self, header: dict, arrays: dict, what: str, timeout_s: float | None = None) -> tuple[dict, dict]:
        if self.failure is not None:
            raise self.failure
        try:
            self._process.stdin.write(encode(header, arrays))
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            code = self._process.wait(timeout=5)
            raise self._fail(f"exited with status {code} before it read {what}") from None
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        try:
            length = decode_prefix(self._read_exact(len(MAGIC) + 8, deadline, what, timeout_s))
            reply, arrays = decode_payload(self._read_exact(length, deadline, what, timeout_s))
        except ProtocolError as error:
            raise self._fail(f"sent a reply to {what} that is not a protocol message: {error}") from None
        if reply["type"] == "error":
            raise self._fail(f"refused {what}: {reply.get('message')!r}")
        return reply, arrays

    def evaluate(self, request: dict, expected_shape: tuple[int, ...]) -> np.ndarray:
        """Integer read-out values ``expected_shape`` (N, B, C) of one ``evaluate`` request's members.

        A reply is checked before it is used: the request number it answers, integer values of the
        expected shape, and each value within what the arithmetic can produce, ``|sum_t U[t]| <=
        T * 2**(state_bits - 1)`` (a saturated register every bin).
        """
        start = time.perf_counter()
        number = self.requests + 1
        what = f"evaluate request {number} of this session"
        reply, arrays = self._exchange({"type": "evaluate", "request": number}, request, what)
        readout = arrays.get("readout")
        if reply["type"] != "readout" or readout is None:
            raise self._fail(f"answered {what} with {reply!r} and arrays {sorted(arrays)} instead of a 'readout'")
        if reply.get("request") != number:
            raise self._fail(
                f"answered {what} with a reply to request {reply.get('request')!r} (a stale or repeated reply); "
                "a reply must carry the number of the request it answers"
            )
        if readout.shape != tuple(expected_shape) or not np.issubdtype(readout.dtype, np.integer):
            raise self._fail(
                f"answered {what} with a read-out of shape {readout.shape} and dtype {readout.dtype}; "
                f"expected integers of shape {tuple(expected_shape)} (members, batch, classes)"
            )
        bound = int(request["frames"].shape[1]) * 2 ** (self.state_bits - 1)
        largest = int(np.abs(readout.astype(np.int64)).max()) if readout.size else 0
        if largest > bound:
            raise self._fail(
                f"answered {what} with a read-out value of magnitude {largest}, beyond {bound}, the most "
                f"{request['frames'].shape[1]} time bins of {self.state_bits}-bit registers can sum to"
            )
        self.requests += 1
        self.seconds += time.perf_counter() - start
        return readout.astype(np.int32)

    def check(self) -> None:
        """After a compiled call: raise what happened to a request during it (its results are void).

        Raises:
          KeyboardInterrupt: Ctrl-C arrived while a request was under way.
          EvaluatorError: a request failed.
        """
        if self.interrupted:
            self.close(kill=True)
            raise KeyboardInterrupt
        if self.failure is not None:
            raise self.failure

    def close(self, kill: bool = False) -> None:
        """Ask the process to stop (or kill it) and reap it."""
        process = getattr(self, "_process", None)
        if process is None or process.poll() is not None:
            return
        if not kill:
            with contextlib.suppress(OSError):
                process.stdin.write(encode({"type": "close"}))
                process.stdin.flush()
                process.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
                return
        process.kill()
        process.wait()


def request_arrays(params: dict, perturbations: dict, inputs: jax.Array, spec) -> dict:
    """The integer arrays of one ``evaluate`` request (inside ``jit``): centre, members, frames.

    Names: ``frames`` (B, T, in); per layer i ``layer{i}_weight`` (out, in), ``layer{i}_bias``
    (out,), ``layer{i}_a`` (N, out, r), ``layer{i}_b`` (N, in, r), ``layer{i}_sign`` (N,),
    ``layer{i}_bias_noise`` (N, out); all int32.
    """
    arrays = {"frames": integer_inputs(inputs)}
    layers = integer_parameters(params, spec)
    for index, (ints, layer_perturbation) in enumerate(zip(layers, perturbations["layers"])):
        member = integer_perturbation(layer_perturbation, spec)
        arrays[f"layer{index}_weight"], arrays[f"layer{index}_bias"] = ints["weight"], ints["bias"]
        for name, value in (("a", member["a"]), ("b", member["b"]), ("sign", member["sign"]), ("bias_noise", member["bias"])):
            if value is not None:
                arrays[f"layer{index}_{name}"] = value
    return arrays


def _narrow(arrays: dict) -> dict:
    """The request's arrays in the smallest integer dtype that holds them (less to send)."""
    narrowed = {}
    for name, value in arrays.items():
        value = np.asarray(value)
        for dtype in (np.int8, np.int16, np.int32):
            info = np.iinfo(dtype)
            if value.size == 0 or (value.min() >= info.min and value.max() <= info.max):
                narrowed[name] = value.astype(dtype)
                break
    return narrowed


def population_evaluate(evaluator: ExternalEvaluator, network):
    """The ``evaluate(params, perturbations, inputs, labels) -> (loss, accuracy)`` hook through ``evaluator``."""
    spec = network.fixed_point

    def evaluate(params, perturbations, inputs, labels):
        arrays = request_arrays(params, perturbations, inputs, spec)
        population = jax.tree_util.tree_leaves(perturbations)[0].shape[0]
        shape = (population, inputs.shape[0], network.num_classes)

        def host(arrays):
            # A failure or a Ctrl-C is kept for check() after the compiled call, and the rest of the
            # call gets zeros: raised here, XLA would print its own traceback of the callback.
            if evaluator.failure is None and not evaluator.interrupted:
                try:
                    return evaluator.evaluate(_narrow(arrays), shape)
                except EvaluatorError:
                    pass  # evaluator.failure holds it
                except KeyboardInterrupt:
                    evaluator.interrupted = True
            return np.zeros(shape, np.int32)

        readout = io_callback(host, jax.ShapeDtypeStruct(shape, jnp.int32), arrays, ordered=True)
        return member_losses(readout_logits(readout, inputs.shape[1], spec), labels)

    evaluate.check = evaluator.check
    return evaluate


@contextlib.contextmanager
def external_population(config, network):
    """``with external_population(config, network) as evaluate``: the hook, or ``None`` without an evaluator.

    The process lives for the block. ``evaluate.check()`` raises, after a compiled call, the
    evaluator's failure or a Ctrl-C that came during a request (see :meth:`ExternalEvaluator.check`).
    """
    section = config.fixed_point
    if network.fixed_point is None or section.evaluator is None:
        yield None
        return
    arithmetic = {**network.fixed_point.record(), "layers": len(network.weight_shapes)}
    evaluator = ExternalEvaluator(section.evaluator, arithmetic, section.evaluator_timeout_s)
    try:
        yield population_evaluate(evaluator, network)
    except Exception:
        if evaluator.failure is not None:
            raise evaluator.failure from None
        raise
    finally:
        evaluator.close(kill=evaluator.failure is not None or evaluator.interrupted)


__all__ = ["EvaluatorError", "ExternalEvaluator", "request_arrays", "population_evaluate", "external_population"]
