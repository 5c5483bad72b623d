"""tb_gradflow: where gradients stop flowing, in TensorFlow/Keras, with a TensorBoard tab."""
from setuptools import find_packages, setup

setup(
    name="tb_gradflow",
    version="0.1.0",
    description="Find the op that cuts your gradient, the line that made it, and what it starves",
    python_requires=">=3.10",
    packages=find_packages(include=["tb_gradflow", "tb_gradflow.*"]),
    package_data={
        "tb_gradflow": ["proto/*.proto", "plugin/static/*"],
    },
    install_requires=[
        "tensorboard>=2.20,<3",
        "protobuf>=6.31.1,<8",
        "numpy>=1.26",
        "keras>=3.8,<4",
        "google-crc32c>=1.5,<2",  # tb-gradflow check: event file checksums at C speed
    ],
    extras_require={
        # TensorFlow comes in two packages; pick the one you use.
        "cpu": ["tensorflow-cpu>=2.20,<3"],
        "gpu": ["tensorflow>=2.20,<3"],
        # tf_keras (Keras 2, TF_USE_LEGACY_KERAS=1) is tested too; it pins the TensorFlow minor.
        "test": ["pytest>=8", "playwright>=1.49", "hypothesis>=6", "tf_keras>=2.20,<3"],
        "proto": ["grpcio-tools==1.74.0"],
        # Libraries users combine with Keras; their tests skip without them. Not installed by
        # .ci/bootstrap: keras-hub (through tensorflow-text) and tf_keras pull the full
        # tensorflow package next to tensorflow-cpu.
        "test-libs": [
            "tensorflow-probability>=0.24,<1", "tf_keras>=2.20,<3", "keras-hub>=0.22,<1",
            "ipykernel>=6.20,<8",
        ],
    },
    entry_points={
        "console_scripts": ["tb-gradflow = tb_gradflow.cli:main"],
        "tensorboard_plugins": ["gradflow = tb_gradflow.plugin.plugin:GradflowLoader"],
    },
)
