"""Builds the native core, vecdb._core, from csrc/ with pybind11.

The shipped build targets the baseline ISA (no -march=native): SIMD kernels
for AVX2 and AVX-512 are compiled per translation unit with target pragmas and
chosen at run time. Set VECDB_SANITIZE=1 to build with AddressSanitizer and
UndefinedBehaviorSanitizer for testing.
"""

import os
from glob import glob

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup

ParallelCompile("VECDB_BUILD_JOBS", default=0).install()

compile_args = ["-O3", "-Wall", "-Wextra", "-fvisibility=hidden"]
link_args = []
if os.environ.get("VECDB_SANITIZE") == "1":
    sanitizers = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
    compile_args = ["-O1", "-g", "-Wall", "-Wextra"] + sanitizers
    link_args = sanitizers

core = Pybind11Extension(
    "vecdb._core",
    sources=sorted(glob("csrc/**/*.cpp", recursive=True)),
    include_dirs=["csrc"],
    cxx_std=17,
    extra_compile_args=compile_args,
    extra_link_args=link_args,
)

setup(ext_modules=[core], cmdclass={"build_ext": build_ext})
