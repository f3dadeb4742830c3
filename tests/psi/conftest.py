from pathlib import Path

import pytest

DATA = Path("/work/shared/data")


@pytest.fixture
def data_dir():
    return DATA
