"""Install edgecollab: the repository's folders form the ``edgecollab`` package."""

import ast
import pathlib

from setuptools import setup


def _package_constant(name):
    """A literal assigned in edgecollab/__init__.py (read, not imported: nothing is
    installed yet)."""
    tree = ast.parse(pathlib.Path(__file__).with_name('edgecollab')
                     .joinpath('__init__.py').read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == name:
            return ast.literal_eval(node.value)
    raise LookupError('edgecollab/__init__.py assigns no %s' % name)


FOLDERS = list(_package_constant('LAYERS'))

setup(
    name='edgecollab',
    version=_package_constant('__version__'),
    description='Network emulation for end-edge AI model collaboration '
                '(bandwidth split between data upload and model transmission)',
    python_requires='>=3.9',
    packages=['edgecollab'] + ['edgecollab.%s' % f for f in FOLDERS],
    package_dir={'edgecollab': 'edgecollab',
                 **{'edgecollab.%s' % f: f for f in FOLDERS}},
    package_data={'edgecollab.scenarios': ['*.yaml', '*.html', 'traces/*', 'corpus/*']},
    install_requires=[
        'mininet==2.3.0.dev6',
        'numpy==2.4.6',
        'scipy==1.17.1',
        'flask==3.1.3',
        'werkzeug==3.1.9',
        'requests==2.34.2',
        'urllib3==2.8.0',       # HTTPResponse.shutdown ends a download at its deadline
        'pyyaml==6.0.3',
        'jsonschema==4.26.0',
        'matplotlib==3.11.2',
        'tqdm==4.70.1',
        'scikit-learn==1.9.1',   # the digits workload: its dataset, teacher and students
    ],
    # The browser tests drive Debian's chromium through its chromium-driver.
    extras_require={'test': ['pytest==9.0.3', 'pytest-xdist==3.8.0', 'selenium==4.51.0',
                             'pillow==13.0.0']},
    entry_points={'console_scripts': ['edgecollab = edgecollab.cli:main']},
)
