"""An open-loop-in-fingers, closed-loop-in-position grasp script: shows the hand can grasp in this sim.

Phases (control steps): move the hand point above the object's top (0-70), close the fingers (70-110),
lift (110-200). It reads only the task's sensors and writes the same 24-d actions a policy would.
"""

from __future__ import annotations

import numpy as np

from envs import quaternions as quat
from envs.scene import FINGER_ACTUATORS
from envs.task import ACTION_DIM, GraspTask

APPROACH_STEPS = 70
CLOSE_STEPS = 40
LIFT_ACTION = 0.15
POSITION_GAIN = 6.0
MAX_APPROACH_ACTION = 0.3


def closed_finger_targets(task: GraspTask) -> np.ndarray:
    """Joint targets of a power grasp: flex every finger, oppose the thumb, no spread."""
    lay = task.layout
    targets = lay.finger_high.copy()
    index = {name: i for i, name in enumerate(FINGER_ACTUATORS)}
    for joint in ("FFJ3", "MFJ3", "RFJ3", "LFJ3", "LFJ4", "THJ2"):
        targets[index[joint]] = 0.0
    targets[index["THJ4"]], targets[index["THJ3"]] = 1.0, 1.2
    targets[index["THJ1"]], targets[index["THJ0"]] = 0.3, -0.5
    return targets


def finger_actions(task: GraspTask, targets: np.ndarray) -> np.ndarray:
    """Inverse of the task's finger mapping: joint targets -> actions in [-1, 1]."""
    lay = task.layout
    return 2.0 * (targets - lay.finger_low) / (lay.finger_high - lay.finger_low) - 1.0


def scripted_action(task: GraspTask, step: int, object_top: np.ndarray) -> np.ndarray:
    """The script's actions for every env at control step ``step``."""
    sensors = task.sim.sensordata
    hand_point = sensors[:, task.layout.sensor["hand_point"]]
    object_pos = sensors[:, task.layout.sensor["object_pos"]]
    actions = np.zeros((task.num_envs, ACTION_DIM))
    open_targets = np.clip(0.0, task.layout.finger_low, task.layout.finger_high)
    closing = np.clip((step - APPROACH_STEPS) / CLOSE_STEPS, 0.0, 1.0)
    if step < APPROACH_STEPS:
        target = object_pos.copy()
        target[:, 2] = object_top
        world = np.clip(POSITION_GAIN * (target - hand_point), -MAX_APPROACH_ACTION, MAX_APPROACH_ACTION)
        actions[:, 0:3] = quat.rotate(quat.from_yaw(-task.hand_yaw), world)  # policy frame = start-yaw frame
    elif step >= APPROACH_STEPS + CLOSE_STEPS:
        actions[:, 2] = LIFT_ACTION
    targets = open_targets + closing * (closed_finger_targets(task) - open_targets)
    actions[:, 6:] = finger_actions(task, targets)
    return actions


def run_scripted_grasp(task: GraspTask, on_step=None) -> dict[str, np.ndarray]:
    """Reset, run one scripted episode, and return per-env lift height, success and held flags.

    ``on_step(task, step)`` is called after every step (for penetration probes or frames).
    """
    task.reset()
    pos = task.layout.sensor["object_pos"]
    start_z = task.sim.sensordata[:, pos][:, 2].copy()
    top = task.scene.config.table_height + 2 * task.rest_height
    max_z = start_z.copy()
    result = None
    for step in range(task.config.episode_length):
        result = task.step(scripted_action(task, step, top))
        if result.done.any() and task.autoreset:
            raise RuntimeError("run_scripted_grasp needs a task without autoreset")
        max_z = np.maximum(max_z, task.sim.sensordata[:, pos][:, 2])
        if on_step is not None:
            on_step(task, step)
    assert result is not None
    return {"lift": max_z - start_z, "is_success": result.is_success, "is_held": result.is_held}


def hand_object_penetration(task: GraspTask, env: int = 0) -> float:
    """Deepest hand-object penetration in env ``env`` now, metres (diagnostic: loops over its contacts)."""
    data = task.sim.data_of(env)
    hand, obj = set(task.layout.hand_geoms.tolist()), set(task.layout.object_geoms.tolist())
    depth = 0.0
    for contact in data.contact[: data.ncon]:
        pair = {int(contact.geom1), int(contact.geom2)}
        if pair & hand and pair & obj:
            depth = max(depth, -float(contact.dist))
    return depth
