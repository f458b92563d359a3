"""Each reward term against a hand computation on a fixed state."""

import math

import numpy as np
import pytest

from envs.rewards import GraspQuantities, reward_terms


def _state(object_z=0.87, lift_action=0.5, delta=0.3, match=True):
    obj = np.array([[0.0, 0.0, object_z]])
    hand = obj + np.array([[0.0, 0.0, 0.05]])  # 5 cm above the object
    tips = np.repeat(obj[:, None, :] + np.array([0.03, 0.04, 0.0]), 5, axis=1)  # each 5 cm away
    return GraspQuantities(
        object_pos=obj, hand_point=hand, tip_points=tips, goal=np.array([0.0, 0.0, 0.9]),
        lift_action=np.array([lift_action]), table_height=0.6, rest_height=np.array([0.03]),
        proposal_delta=np.array([delta]), proposal_match=np.array([match]),
    )


def test_base_terms_by_hand():
    terms = reward_terms("base", _state())
    goal_dist = 0.03  # 0.9 - 0.87
    assert terms["finger_dist"][0] == pytest.approx(-0.5 * 5 * 0.05)
    assert terms["hand_dist"][0] == pytest.approx(-1.0 * 0.05)
    assert terms["goal_hand"][0] == pytest.approx(0.9 - 2 * goal_dist)
    assert terms["hand_up"][0] == pytest.approx(0.2)  # 0.87 >= 0.6 + 0.2 and near
    assert terms["bonus"][0] == pytest.approx(1 / (1 + 10 * goal_dist))
    assert terms["proposal"][0] == pytest.approx(-0.15)


def test_stage1_drops_shaping_and_gates_goal_term_on_the_proposal():
    terms = reward_terms("stage1", _state(object_z=0.7, match=False))
    assert set(terms) == {"goal_hand", "hand_up", "bonus", "proposal"}
    assert terms["goal_hand"][0] == 0.0  # proposal thresholds not met
    assert terms["hand_up"][0] == pytest.approx(0.1 + 0.1 * 0.5)  # above rest + 3 mm, below 0.8
    assert terms["bonus"][0] == 0.0  # 20 cm from the goal


def test_stage2_uses_absolute_lift_threshold_and_no_proposal():
    low = reward_terms("stage2", _state(object_z=0.62))  # below table + 3 cm
    assert set(low) == {"goal_hand", "hand_up", "bonus"}
    assert low["hand_up"][0] == 0.0
    assert low["goal_hand"][0] == pytest.approx(0.9 - 2 * math.hypot(0, 0.28))
    lifted = reward_terms("stage2", _state(object_z=0.64, lift_action=-1.0))
    assert lifted["hand_up"][0] == pytest.approx(0.0)  # 0.1 + 0.1 * (-1)


def test_far_hand_gets_no_gated_terms():
    state = _state()
    far = GraspQuantities(**{**state.__dict__, "hand_point": state.hand_point + 0.5})
    for mode in ("stage1", "stage2"):
        terms = reward_terms(mode, far)
        assert terms["goal_hand"][0] == 0.0 and terms["hand_up"][0] == 0.0
    assert reward_terms("stage2", far)["bonus"][0] == 0.0
    assert reward_terms("stage1", far)["bonus"][0] > 0.0  # not gated in goal-conditioned modes


def test_unknown_mode_is_named():
    with pytest.raises(ValueError, match="stage3"):
        reward_terms("stage3", _state())
