"""Build hook: compiles the C core (csrc/) into ``secagg._csecagg`` through cffi."""

from setuptools import setup

setup(cffi_modules=["csrc/build_ffi.py:ffibuilder"])
