"""Side-by-side timings of sdeve against diffusers, against each backend's hardware floor, and of its front ends
against each other (issue 5). Run ``python -m benchmarks`` (``--help`` for the options).

How things are timed
--------------------
The cases of one comparison are timed in one process, side by side: warmed up, calibrated to a number of calls
per sample (a sample lasts ``--min-sample`` seconds or more), then sampled round-robin with the order rotated each
round and the garbage collector off. Times are medians of the samples; a ratio is the median over rounds of the
ratio within a round. Device work is waited for inside the timed region: ``torch.cuda.synchronize()`` after a
sample's calls, ``jax.block_until_ready`` on every result, the CuPy stream's ``synchronize()``, and Dask results
are ``persist``-ed (computed, chunks kept where they are). There are no timing assertions anywhere: CI runs
``--quick`` as a smoke test of this harness only.

Groups (``--groups``)
---------------------
``diffusers``
    torch on the CPU, the drop-in ``sdeve_backends.torch.ScoreSdeVeScheduler`` against
    ``diffusers.ScoreSdeVeScheduler``, per call, both from ``torch.Generator`` seeded alike, same inputs, the
    timestep an element of each one's ``timesteps`` (a 0-d tensor, as the pipeline passes it).
    ``step_pred`` and ``step_correct`` at (1, 3, 32, 32) (target ``ours/diffusers <= 0.5``) and (4, 3, 256, 256)
    (``<= 0.8``); construction + ``set_timesteps(2000)`` + ``set_sigmas(2000)`` (``<= 0.1``).
``floor``
    Every backend and front end at large arrays, (16, 4, 256, 256) float32 (16 MiB per array) on the CPU and
    (64, 4, 256, 256) (64 MiB) on a GPU: ``ours/floor``, target ``<= 1.25`` for the backend's own front end
    (the first listed in ``benchmarks._kits.FRONT_ENDS``).
``overhead``
    Per call, at tiny sizes, the generic ``sdeve.ScoreSdeVeScheduler`` against the framework's front end (the
    torch drop-in; the Flax API for JAX, both eager, and both under ``jax.jit`` for information): target
    ``<= 1.5``.
``jax_loop``
    A 1000-step predictor-corrector loop (toy linear score) compiled as one program against the same loop
    stepped from Python through jitted steps: target ``stepped/compiled >= 10``, at (16, 2) and (1, 3, 32, 32).
    Twice: a ``lax.fori_loop`` over the Flax API built here, and the library's sampler
    (``sdeve_backends.jax.sample`` against ``sdeve.sample`` with a callback) as a user calls it. Both also
    against the loop's random numbers alone, compiled (``compiled/draws``): what no compiled loop can beat
    (see ``benchmarks._jax_loop``).
``gpu``
    Kernel counts per step (``torch.profiler``), no host synchronisation in a 100-step loop
    (``torch.cuda.set_sync_debug_mode("error")``), the JAX loop under ``jax.transfer_guard("disallow")`` (run on
    the CPU too), CUDA-graph capture and replay (see ``benchmarks._gpu``). Skipped without a GPU.

The floor
---------
``floor = draw + copy``, both measured in the same run as the step:

- ``draw``: the time the backend's adapter (``sdeve_backends.adapter_for(x).normal``, the very call the step
  makes) takes to draw the step's noise, one array of the sample's shape and dtype.
- ``copy``: the time of the backend's own copy (``torch.Tensor.clone``, ``numpy.ndarray.copy``, ``jnp.copy``,
  ``cupy.ndarray.copy``, Dask ``map_blocks(np.copy).persist()``, ``xp.asarray(x, copy=True)``; allocation
  included, as a step allocates its outputs) of float32 arrays of the sample's size (the last one smaller
  where needed) that make the copy move, reading plus writing, as many bytes as the step must, besides the
  noise the draw wrote. Arrays of the sample's size, not one large one, so that the copy allocates as the
  step does (glibc, for one, maps fresh pages for every allocation over 32 MiB). With ``S`` the bytes of one
  array of the sample's size:

  - ``step_pred`` reads ``sample``, ``model_output``, ``noise`` and writes ``prev_sample``,
    ``prev_sample_mean``: ``5 S``, so ``2.5 S`` bytes are copied (two arrays and a half);
  - ``step_correct`` cannot write an element before it has the step size, which needs the norms of
    ``model_output`` and ``noise``: a first pass reads those two (``2 S``), a second reads ``sample``,
    ``model_output``, ``noise`` and writes ``prev_sample`` (``4 S``): ``6 S``, so ``3 S`` bytes are copied.

Rows of the front ends that take ``noise=`` also time the update alone with the noise given (``update``) and
report ``copy/update``: the fraction of the copy's bandwidth the update reaches (target ``>= 0.7`` on a GPU,
at 64 MiB per array).

Other entry points: ``python -m benchmarks --scaling`` (time against batch size and number of steps, a table
and ``docs/scaling.png``) and ``python -m benchmarks.profile`` (where the time of one drop-in step goes, against
diffusers).
"""
