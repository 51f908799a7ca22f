"""Builds the tlcm-client package: generates the gRPC stubs of the tlcm.v1 API into it.

The .proto files are those of the repository holding this folder (../../proto), or of the folder
named by TLCM_PROTO_DIR. They are compiled with grpcio-tools (a build requirement) into the
package `tlcm.v1` of the build, never into the source tree. The generated code needs a protobuf
and a grpcio runtime at least as new as the generator (protobuf: of the same major
version), so those become the install requirements.
"""

import os
import pathlib
from importlib import metadata

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent
# The API files; server_config.proto configures the server and is not part of the client.
PROTOS = ["tlcm/v1/tlcm_service.proto", "tlcm/v1/load_report.proto"]


def proto_root():
    root = pathlib.Path(os.environ.get("TLCM_PROTO_DIR") or HERE.parent.parent / "proto")
    missing = [p for p in PROTOS if not (root / p).is_file()]
    if missing:
        raise SystemExit(
            f"tlcm-client: {root / missing[0]} not found: build the package from a checkout of "
            "tlcm-serve (pip install client/python), or set TLCM_PROTO_DIR to its proto/ folder")
    return root


def release(package):
    """Major.minor.patch of an installed distribution, without pre-release or local tags."""
    return ".".join(metadata.version(package).split(".")[:3]).split("+")[0]


def same_major(package):
    """`package` at least as new as the installed one, within its major version."""
    version = release(package)
    return f"{package}>={version},<{int(version.split('.')[0]) + 1}"


class BuildPyWithStubs(build_py):
    """build_py that also writes tlcm/v1/*_pb2.py and *_pb2_grpc.py into the build folder."""

    def run(self):
        super().run()
        from grpc_tools import protoc

        root = proto_root()
        out = pathlib.Path(self.build_lib)
        (out / "tlcm" / "v1").mkdir(parents=True, exist_ok=True)
        include = pathlib.Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto
        args = ["grpc_tools.protoc", f"-I{root}", f"-I{include}", f"--python_out={out}",
                f"--pyi_out={out}", f"--grpc_python_out={out}"]
        if protoc.main(args + [str(root / p) for p in PROTOS]) != 0:
            raise SystemExit("tlcm-client: protoc failed on " + ", ".join(PROTOS))
        (out / "tlcm" / "v1" / "__init__.py").write_text(
            '"""Generated from proto/tlcm/v1 when the package was built."""\n')


setup(
    cmdclass={"build_py": BuildPyWithStubs},
    install_requires=[
        f"grpcio>={release('grpcio-tools')}",
        same_major("protobuf"),  # generated code runs only on its protobuf major version
    ],
)
