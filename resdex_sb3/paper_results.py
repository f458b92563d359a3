"""The numbers ResDex (ICLR 2025) reports, for the report to print beside ours, marked as the paper's.

All are the paper's any-time success in % (within 5 cm of the goal at some step) on DexGraspNet (3,200 training
objects, 241 test objects), simulated in IsaacGym with ~1.76 B env steps per hyper-policy stage; seeds' spreads are
the paper's ``±``. Tables 1-2: after stage 1 / stage 2, keyed by k; Table 3: vision students; Table 4: stage 1 on the
training set, weights only (MoE) against weights and residual (MoE+Res); Table 5: grasp-pose distance
D = -sum_t r_t^proposal on unseen categories after stage 2 (lower is better).
"""

from __future__ import annotations

#: the scale behind every number here: DexGraspNet's training objects, env steps per hyper-policy stage
TRAIN_OBJECTS = 3200
STEPS_PER_STAGE = 1.76e9

#: Table 1 (after stage 1): k -> ((mean, spread) per split)
TABLE1 = {
    1: ((83.2, 1.5), (82.8, 1.0), (85.1, 0.9)),
    2: ((82.8, 3.9), (82.6, 3.2), (85.0, 3.3)),
    3: ((88.1, 1.2), (88.2, 0.4), (89.3, 1.0)),
    4: ((90.6, 0.6), (89.7, 0.8), (90.9, 0.1)),
    5: ((87.6, 0.5), (87.3, 0.8), (88.1, 0.2)),
    6: ((88.7, 0.6), (87.8, 0.5), (88.8, 1.1)),
}
#: Table 2 (after stage 2): k -> ((mean, spread) per split)
TABLE2 = {
    1: ((94.3, 1.6), (93.8, 1.8), (94.5, 1.3)),
    2: ((94.5, 0.9), (94.3, 1.1), (95.2, 1.0)),
    3: ((94.1, 0.9), (93.9, 0.9), (94.4, 1.2)),
    4: ((94.6, 1.6), (94.4, 1.7), (95.4, 1.0)),
    5: ((94.2, 0.5), (93.7, 0.9), (94.2, 0.6)),
    6: ((93.9, 1.3), (93.6, 1.6), (94.5, 1.1)),
}
#: the multi-task baselines of Tables 1-2 (one number per split, no seeds given)
BASELINES = {"UniDexGrasp": (79.4, 74.3, 70.8), "UniDexGrasp++": (87.9, 84.3, 83.1)}
#: Table 3: vision-based policies, per split
TABLE3 = {"UniDexGrasp": (73.7, 68.6, 65.1), "UniDexGrasp++": (85.4, 79.6, 76.7), "ResDex (k=4)": (88.8, 88.5, 87.2)}
#: Table 4: k -> (MoE, MoE+Res), stage 1, training set
TABLE4 = {1: (61.4, 83.2), 2: (71.1, 82.8), 3: (79.4, 88.1), 4: (80.3, 90.6), 5: (72.1, 87.6), 6: (81.6, 88.7)}
#: Table 5: k -> D on unseen categories after stage 2
TABLE5 = {1: 223.6, 2: 174.5, 3: 194.3, 4: 176.3, 5: 204.6, 6: 176.1}
