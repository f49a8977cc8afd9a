"""The optional C extension; everything else about the package is in pyproject.toml.

``pypbx/media/_fastrelay.c`` is the RTP relay's fast path. ``optional=True``: a machine without
a compiler or Python's headers skips it, and pypbx runs the same path in Python.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("pypbx.media._fastrelay", ["pypbx/media/_fastrelay.c"], optional=True),
    ]
)
