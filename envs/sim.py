"""The batched physics: N MuJoCo simulations stepped together on a thread pool, exposed as arrays.

This is the only module that talks to the engine. The task reads ``qpos``, ``qvel``, ``sensordata`` and
``xaxis`` and writes ``ctrl``; a GPU engine (MuJoCo Warp, MJX) can stand behind the same attributes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import mujoco
import mujoco.batch
import numpy as np

from envs.objects.spec import ObjectSpec
from envs.scene import Scene

#: Warnings after which MuJoCo has reset a simulation by itself: treated as a physics blow-up. Each warning
#: row of ``Batch.warning`` is MuJoCo's mjWarningStat (lastinfo, number); column 1 counts occurrences.
_BLOWUP_WARNINGS = np.array(
    [mujoco.mjtWarning.mjWARN_BADQPOS.value, mujoco.mjtWarning.mjWARN_BADQVEL.value,
     mujoco.mjtWarning.mjWARN_BADQACC.value]
)  # fmt: skip


class BatchedSim:
    """N simulations of the scene, one object each, on ``mujoco.batch.Batch``.

    :param scene: the compiled scene and its object model factory.
    :param objects: the object of every simulation (len = number of envs).
    :param num_threads: worker threads; 0 uses every CPU.
    """

    def __init__(self, scene: Scene, objects: Sequence[ObjectSpec], num_threads: int = 0) -> None:
        if not objects:
            raise ValueError("BatchedSim needs at least one object")
        self.scene = scene
        self.num_envs = len(objects)
        models = [scene.object_model(o) for o in objects]
        # kept so that model_of returns the same object every call (a renderer is bound to one model)
        self.models = models
        self.batch = mujoco.batch.Batch(models[0], nsim=self.num_envs, nthread=num_threads or os.cpu_count() or 1)
        if any(m is not models[0] for m in models):
            try:
                self.batch.set_models(models)
            except mujoco.FatalError as err:
                bad = _first_layout_mismatch(models)
                raise ValueError(
                    f"objects {objects[0].name!r} and {objects[bad].name!r} do not share one MjData layout "
                    f"({err}); objects made of hull meshes can only be batched with layout-identical ones"
                ) from err
        self.qpos = self.batch.bind("qpos")
        self.qvel = self.batch.bind("qvel")
        self.ctrl = self.batch.bind("ctrl")
        self.qacc_warmstart = self.batch.bind("qacc_warmstart")
        self.sensordata = self.batch.bind("sensordata")
        self.xaxis = self.batch.bind("xaxis")
        self._warnings_seen = self.batch.warning[:, _BLOWUP_WARNINGS, 1].copy()

    def step(self, substeps: int) -> np.ndarray:
        """Advance every simulation; return a bool mask of those that blew up (NaN state or a MuJoCo reset)."""
        failed = np.zeros(self.num_envs, dtype=bool)
        try:
            self.batch.step(nstep=substeps)
        except mujoco.batch.SimulationError as err:
            failed[err.ids] = True
        counts = self.batch.warning[:, _BLOWUP_WARNINGS, 1]  # a copy (fancy index)
        grew = counts > self._warnings_seen
        self._warnings_seen = counts
        # whole-batch checks first: the per-env reductions cost more and are almost never needed
        if grew.any():
            failed |= grew.any(axis=1)
        if not (np.isfinite(self.qpos).all() and np.isfinite(self.qvel).all()):
            failed |= ~np.isfinite(self.qpos).all(axis=1) | ~np.isfinite(self.qvel).all(axis=1)
        return failed

    def reset(self, ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray | None = None) -> None:
        """Put simulations ``ids`` in the given state (controls zero) and compute their sensors."""
        if len(ids) == 0:
            return
        self.batch.reset(ids, stage=mujoco.mjtStage.mjSTAGE_NONE.value)
        self.qpos[ids] = qpos
        self.qvel[ids] = 0.0 if qvel is None else qvel
        self.ctrl[ids] = 0.0
        self.batch.forward(ids)
        self._warnings_seen[ids] = self.batch.warning[ids][:, _BLOWUP_WARNINGS, 1]

    def model_of(self, env: int) -> mujoco.MjModel:
        """The model simulation ``env`` runs on (for rendering and diagnostics)."""
        return self.models[env]

    def data_of(self, env: int) -> mujoco.MjData:
        """Simulation ``env``'s state with every derived field computed (for rendering and diagnostics)."""
        model = self.model_of(env)
        data = self.batch.get_data(env, mujoco.MjData(model))
        mujoco.mj_forward(model, data)
        return data


def _first_layout_mismatch(models: Sequence[mujoco.MjModel]) -> int:
    reference = models[0]
    for i, model in enumerate(models):
        if (model.nbvh, model.nmeshdegmax, model.nbuffer) != (reference.nbvh, reference.nmeshdegmax, reference.nbuffer):
            return i
    return len(models) - 1
