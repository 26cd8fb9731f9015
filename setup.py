"""Builds the native core, vecdb._core, from csrc/ with pybind11.

The shipped build targets the baseline ISA (no -march=native): SIMD kernels
for AVX2 and AVX-512 are compiled per translation unit with target pragmas and
chosen at run time. Set VECDB_SANITIZE=1 to build with AddressSanitizer and
UndefinedBehaviorSanitizer, or VECDB_SANITIZE=thread for ThreadSanitizer
(testing only; see the Makefile's sanitize and tsan targets).
"""

import os
from glob import glob

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup

ParallelCompile("VECDB_BUILD_JOBS", default=0).install()

compile_args = ["-O3", "-Wall", "-Wextra", "-fvisibility=hidden"]
link_args = []
SANITIZERS = {
    "1": ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"],
    "thread": ["-fsanitize=thread"],
}
sanitize = os.environ.get("VECDB_SANITIZE")
if sanitize:
    if sanitize not in SANITIZERS:
        raise SystemExit(f"VECDB_SANITIZE must be one of {', '.join(SANITIZERS)}, got {sanitize!r}")
    sanitizers = SANITIZERS[sanitize] + ["-fno-omit-frame-pointer"]
    compile_args = ["-O1", "-g", "-Wall", "-Wextra"] + sanitizers
    link_args = sanitizers

core = Pybind11Extension(
    "vecdb._core",
    sources=sorted(glob("csrc/**/*.cpp", recursive=True)),
    # Headers too: without them an in-place build after a header-only change keeps the old module.
    depends=sorted(glob("csrc/**/*.h", recursive=True)),
    include_dirs=["csrc"],
    cxx_std=17,
    extra_compile_args=compile_args,
    extra_link_args=link_args,
)

setup(ext_modules=[core], cmdclass={"build_ext": build_ext})
