"""tb_gradflow: where gradients stop flowing, in TensorFlow/Keras, with a TensorBoard tab.

The build backend is declared in pyproject.toml; the metadata lives here.
"""
import pathlib
import re

from setuptools import find_packages, setup

_HERE = pathlib.Path(__file__).parent
_VERSION = re.search(r'^__version__ = "([^"]+)"', (_HERE / "tb_gradflow" / "__init__.py").read_text(), re.M)[1]

# What training-side code (analyze, summary, the Keras callback) needs on top of the viewer.
_KERAS = "keras>=3.8,<4"

setup(
    name="tb_gradflow",
    version=_VERSION,
    description="Find the op that cuts your gradient, the line that made it, and what it starves",
    long_description=(_HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    license_files=["LICENSE"],
    python_requires=">=3.10",
    packages=find_packages(include=["tb_gradflow", "tb_gradflow.*"]),
    package_data={
        "tb_gradflow": ["py.typed", "proto/*.proto", "proto/*.pyi", "plugin/static/*", "export/static/*"],
    },
    # The viewer (TensorBoard tab, CLI, export) reads event files without TensorFlow.
    install_requires=[
        "tensorboard>=2.16,<3",
        "protobuf>=3.20.3,<8",
        "numpy>=1.26",
    ],
    extras_require={
        # TensorFlow comes in two packages; pick the one you use.
        "cpu": ["tensorflow-cpu>=2.16,<3", _KERAS],
        "gpu": ["tensorflow>=2.16,<3", _KERAS],
        "test": [
            "pytest>=8",
            "playwright>=1.49",
            "hypothesis>=6",
            "nbclient>=0.10",
            "nbformat>=5.10",
            "ipykernel>=6.29",
            "build>=1.2",
            "twine>=6",
            # The quality gates (scripts/gates.sh); the proto's stub is checked with types-protobuf
            # and regenerated with mypy-protobuf's plugin.
            "ruff>=0.17,<0.18",
            "mypy>=2.4,<3",
            "mypy-protobuf>=5.1,<6",
            "types-protobuf>=7.35",
        ],
        # Libraries users combine with Keras; their tests skip without them. .ci/bootstrap
        # installs tf_keras and keras-hub without their dependencies: both would pull the full
        # tensorflow package in beside tensorflow-cpu.
        "test-libs": ["tensorflow-probability>=0.24,<1", "tf_keras>=2.16,<3", "keras-hub>=0.22,<1"],
        "proto": ["grpcio-tools>=1.62,<1.63"],
        # The viewer that tests/test_model_explorer.py draws `export --format model-explorer` in;
        # optional: the test skips without it. Users install it themselves to view the export.
        "model-explorer": ["ai-edge-model-explorer>=0.1.34,<0.2"],
        # tb_gradflow.torch: the same diagnosis for PyTorch training. Nothing else (no torchvision).
        "torch": ["torch>=2.1"],
    },
    entry_points={
        "console_scripts": ["tb-gradflow = tb_gradflow.cli:main"],
        "tensorboard_plugins": ["gradflow = tb_gradflow.plugin.plugin:GradflowLoader"],
    },
    classifiers=[
        "Development Status :: 4 - Beta",
        "Intended Audience :: Developers",
        "Intended Audience :: Science/Research",
        "Operating System :: OS Independent",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Software Development :: Debuggers",
        "Framework :: Jupyter",
        "Typing :: Typed",
    ],
    project_urls={
        "Package index": "https://pypi.org/project/tb_gradflow/",
    },
    keywords=["tensorflow", "keras", "pytorch", "tensorboard", "gradient", "debugging"],
)
