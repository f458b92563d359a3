"""The hand can grasp in this simulation, and batching does not change the physics."""

import numpy as np

from envs.config import TaskConfig
from envs.objects.primitives import cube, primitive_objects
from envs.scripted import hand_object_penetration, run_scripted_grasp
from envs.task import GraspTask


def test_scripted_grasp_lifts_cube_without_crushing_it():
    task = GraspTask([cube()], autoreset=False, num_threads=1)
    deepest = []
    result = run_scripted_grasp(task, on_step=lambda t, s: deepest.append(hand_object_penetration(t)))
    assert result["lift"][0] >= 0.15
    assert max(deepest) <= 0.005
    assert result["is_success"][0]


def _random_actions(steps, n, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=(steps, n, 24))


def test_batch_matches_single_envs_after_100_steps():
    objects = primitive_objects()[:4]
    config = TaskConfig(obs_mode="hyper", reward_mode="stage1")
    batch = GraspTask(objects, config, autoreset=False, num_threads=2)
    batch.seed([10 + i for i in range(4)])
    batch.reset()
    actions = _random_actions(100, 4)
    for a in actions:
        batch_result = batch.step(a)
    for i, obj in enumerate(objects):
        single = GraspTask([obj], config, scene=batch.scene, autoreset=False, num_threads=1)
        single.seed([10 + i])
        single.reset()
        for a in actions:
            single_result = single.step(a[i : i + 1])
        np.testing.assert_allclose(batch_result.obs[i], single_result.obs[0], atol=1e-4)
        np.testing.assert_allclose(batch.sim.qpos[i], single.sim.qpos[0], atol=1e-4)
        assert batch_result.reward[i] == np.float32(single_result.reward[0])


def test_reset_leaves_other_envs_untouched():
    task = GraspTask(primitive_objects()[:3], autoreset=False, num_threads=1)
    task.reset()
    for a in _random_actions(30, 3):
        task.step(a)
    qpos, qvel = task.sim.qpos.copy(), task.sim.qvel.copy()
    progress = task.progress.copy()
    before = task._obs.copy()
    obs = task.reset(np.array([1]))
    for i in (0, 2):
        np.testing.assert_array_equal(task.sim.qpos[i], qpos[i])
        np.testing.assert_array_equal(task.sim.qvel[i], qvel[i])
        np.testing.assert_array_equal(obs[i], before[i])
    assert task.progress[1] == 0 and task.progress[0] == progress[0] == 30
    assert not np.allclose(task.sim.qpos[1], qpos[1])


def test_mixed_objects_share_one_batch_and_keep_their_masses():
    objects = primitive_objects()
    task = GraspTask(objects, autoreset=False, num_threads=1)
    masses = [task.sim.model_of(i).body("object").mass[0] for i in range(len(objects))]
    assert len(set(np.round(masses, 6))) == len(objects)
    task.reset()
    rest = task.sim.sensordata[:, task.layout.sensor["object_pos"]][:, 2] - task.scene.config.table_height
    np.testing.assert_allclose(rest, task.rest_height + 0.002, atol=1e-9)
