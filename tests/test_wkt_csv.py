"""The DSTL WKT CSV format (``sattag.wkt_csv``): the one reader of rows and the one writer."""
from __future__ import annotations

import pytest
import shapely

from sattag.errors import InputError, LabelError
from sattag.wkt_csv import HEADER, read_wkt_rows, write_wkt_csv


def test_rows_written_read_back_in_order(tmp_path):
    # A WKT field far past the csv module's default 128 KiB limit, as in the real truth file.
    big = shapely.MultiPolygon([shapely.box(i * 1e-5, 0, i * 1e-5 + 5e-6, 5e-6) for i in range(6000)])
    rows = [("6120_2_2", 2, big.wkt), ("6010_1_2", 1, "MULTIPOLYGON EMPTY"), ("6120_2_2", 1, "MULTIPOLYGON EMPTY")]
    assert len(rows[0][2]) > 128 * 1024
    path = write_wkt_csv(tmp_path / "sub.csv", rows)
    assert path.read_text().splitlines()[0] == ",".join(HEADER)
    back = list(read_wkt_rows(path, class_ids={1, 2}, strict=True))
    assert [(r.scene, r.class_type, r.wkt) for r in back] == rows
    assert [r.row for r in back] == [1, 2, 3] and back[1].where == "row 2 (line 3)"
    assert all(isinstance(r.class_type, int) for r in back)
    only = list(read_wkt_rows(path, scene_ids=["6010_1_2"]))
    assert [(r.scene, r.row) for r in only] == [("6010_1_2", 2)]
    assert not list(tmp_path.glob(".*tmp*"))


def test_faults_name_file_row_and_scene_in_the_callers_error(tmp_path):
    path = write_wkt_csv(tmp_path / "w.csv", [("6120_2_2", 1, "MULTIPOLYGON EMPTY"), ("6120_2_2", "x", "")])
    with pytest.raises(LabelError, match=r"w\.csv: scene 6120_2_2: row 2 \(line 3\): ClassType 'x'"):
        list(read_wkt_rows(path, error=LabelError))
    with pytest.raises(InputError, match=r"row 1 \(line 2\): ClassType 1 is not one of"):
        list(read_wkt_rows(path, class_ids={5}))
    (tmp_path / "extra.csv").write_text("ImageId,ClassType,MultipolygonWKT,note\na,1,MULTIPOLYGON EMPTY,x\n")
    assert len(list(read_wkt_rows(tmp_path / "extra.csv"))) == 1  # lenient: the first 3 columns
    with pytest.raises(InputError, match="header must be"):
        list(read_wkt_rows(tmp_path / "extra.csv", strict=True))
    with pytest.raises(InputError, match="cannot read WKT CSV"):
        list(read_wkt_rows(tmp_path / "nope.csv"))
