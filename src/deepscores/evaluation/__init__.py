"""Detection evaluation: COCO-style mAP and a faithful reproduction of the DeepScoresV2 toolkit's metric."""

from deepscores.evaluation.detect import (EvalResult, EvaluationInputError, evaluate_detect, evaluate_detect_files,
                                          evaluate_detections, ground_truth_file, load_coco_ground_truth,
                                          load_ground_truth, load_obb_anns_ground_truth, load_predictions)
from deepscores.evaluation.records import Detection, Detections, GroundTruth, GroundTruthBox

__all__ = [
    "Detection", "Detections", "EvalResult", "EvaluationInputError", "GroundTruth", "GroundTruthBox",
    "evaluate_detect", "evaluate_detect_files", "evaluate_detections", "ground_truth_file",
    "load_coco_ground_truth", "load_ground_truth", "load_obb_anns_ground_truth", "load_predictions",
]
