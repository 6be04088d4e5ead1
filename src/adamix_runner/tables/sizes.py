"""Split sizes of the paper's data sets, for the PLAN estimate (runs are not read for it, so nothing is downloaded).

GLUE: the hub data set nyu-mll/glue (its dataset card's split sizes). E2E, WebNLG 2017, DART v1.1.1: the data
statistics of the LoRA paper's appendix (Hu et al., 2021), whose data the AdaMix NLG code uses (E2E also in
conf/task/e2e.yaml). Polarity: conf/task/polarity.yaml (3,200 train / 800 validation).
"""

from __future__ import annotations

TRAIN = {
    "mnli": 392_702,
    "qnli": 104_743,
    "sst2": 67_349,
    "qqp": 363_846,
    "mrpc": 3_668,
    "cola": 8_551,
    "rte": 2_490,
    "stsb": 5_749,
    "e2e": 42_061,
    "webnlg": 18_025,
    "dart": 62_659,
    "polarity": 3_200,
}

EVAL = {  # all evaluation splits of the task together (MNLI: matched + mismatched)
    "mnli": 9_815 + 9_832,
    "qnli": 5_463,
    "sst2": 872,
    "qqp": 40_430,
    "mrpc": 408,
    "cola": 1_043,
    "rte": 277,
    "stsb": 1_500,
    "e2e": 4_693,
    "webnlg": 4_928,
    "dart": 12_552,
    "polarity": 800,
}

GENERATION_INPUTS = {  # distinct inputs the final beam search decodes (references grouped per input)
    "e2e": 630,  # the E2E test set's meaning representations (conf/task/e2e.yaml)
}
