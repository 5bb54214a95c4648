"""`seismo evaluate` on a file whose labels were not named (a stranger's finding)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seismo.models.errors import DataError
from seismo.stream.offline.evaluate import labelled_table


def test_a_label_column_left_unnamed_is_pointed_at(tmp_path: Path) -> None:
    data = tmp_path / "rooms.csv"
    data.write_text("temp,rh,label\n1.0,2.0,0\n1.5,2.5,1\n")
    with pytest.raises(DataError) as caught:
        labelled_table(data, None, n_features=2)
    message = str(caught.value)
    assert "no --label-column was given" in message
    assert message.endswith("(its column 'label'? give --label-column label)")
    assert "\n" not in message
