"""Maps the repository's top-level folders under the one import name ``stormproof``.

``pyproject.toml`` holds the metadata; this file only computes the package list, because
setuptools' declarative ``packages.find`` cannot put a folder under a different import name
(``harness/`` -> ``stormproof.harness``). The ``stormproof`` parent is a namespace package.
"""

from setuptools import find_packages, setup

FOLDERS = ("harness", "reference_app", "scenarios")

packages = []
package_dir = {}
for folder in FOLDERS:
    package_dir[f"stormproof.{folder}"] = folder
    packages.append(f"stormproof.{folder}")
    packages += [f"stormproof.{folder}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=package_dir)
