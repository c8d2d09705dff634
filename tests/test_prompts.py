import json

import pytest

from cotgen.errors import InputError
from cotgen.prompts import TAGS, Clause, Record, load_records, parse_record, write_records
from cotgen.world.records import all_records


def test_real_geneval_metadata_loads_and_writes_back_unchanged(geneval_metadata, tmp_path):
    records = load_records(geneval_metadata)
    assert len(records) == 553
    assert {r.tag for r in records} == set(TAGS)
    position = next(r for r in records if r.tag == "position")
    assert position.include[1].position[0] in {"left of", "right of", "above", "below"}
    out = tmp_path / "roundtrip.jsonl"
    write_records(out, records)
    assert out.read_bytes() == geneval_metadata.read_bytes()


def test_records_are_typed():
    record = parse_record(
        {"tag": "counting", "include": [{"class": "cup", "count": 2}], "exclude": [{"class": "cup", "count": 3}],
         "prompt": "a photo of two cups"},
        "x",
    )
    assert record == Record("counting", (Clause("cup", 2),), "a photo of two cups", exclude=(Clause("cup", 3),))


@pytest.mark.parametrize("tag", TAGS)
def test_world_records_round_trip_through_json(tag):
    for record in all_records(tag):
        assert parse_record(json.loads(record.to_line()), "x") == record


GOOD = '{"tag": "single_object", "include": [{"class": "cup", "count": 1}], "prompt": "a photo of a cup"}'


@pytest.mark.parametrize(
    "line, field",
    [
        ('{"tag": "counting", "include": [{"class": "cup", "count": "two"}], "prompt": "p"}', "include[0].count"),
        ('{"tag": "counting", "include": [{"class": "cup", "count": 0}], "prompt": "p"}', "include[0].count"),
        ('{"tag": "shapes", "include": [{"class": "cup", "count": 1}], "prompt": "p"}', "tag: unknown tag"),
        ('{"tag": "colors", "include": [{"class": "cup", "count": 1}]}', "prompt: missing"),
        ('{"tag": "colors", "include": [], "prompt": "p"}', "include: expected a non-empty list"),
        ('{"tag": "colors", "include": [{"class": "cup", "count": 1, "color": "teal"}], "prompt": "p"}', "include[0].color"),
        ('{"tag": "colors", "include": [{"class": "cup", "count": 1, "colour": "red"}], "prompt": "p"}', "include[0].colour: unknown field"),
        ('{"tag": "position", "include": [{"class": "a", "count": 1, "position": ["left of", 0]}], "prompt": "p"}', "include[0].position"),
        ('{"tag": "position", "include": [{"class": "a", "count": 1}, {"class": "b", "count": 1, "position": ["beside", 0]}], "prompt": "p"}', "include[1].position: unknown relation"),
        ('{"tag": "counting", "include": [{"class": "a", "count": 1}], "exclude": [{"class": "a", "count": 2, "color": "red"}], "prompt": "p"}', "exclude[0].color: unknown field"),
        ('{"tag": "counting", "include": [{"count": 1}], "prompt": "p"}', "include[0].class: missing"),
        ('{"tag": "counting", "include": [{"class": "a", "count": 1}], "prompt": ""}', "prompt: expected a non-empty string"),
        ('["not", "an", "object"]', "expected a JSON object"),
        ('{"tag": "counting", "include": [', "invalid JSON"),
    ],
)
def test_malformed_line_names_file_line_and_field(tmp_path, line, field):
    path = tmp_path / "meta.jsonl"
    path.write_text(f"{GOOD}\n\n{line}\n{GOOD}\n")
    with pytest.raises(InputError) as err:
        load_records(path)
    message = str(err.value)
    assert message.startswith(f"{path}:3: ")
    assert field in message
    assert "\n" not in message


def test_missing_and_empty_files_are_rejected(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_records(tmp_path / "absent.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError, match="no records"):
        load_records(tmp_path / "empty.jsonl")


def test_write_records_leaves_no_temporary_files(tmp_path):
    records = list(all_records("position")[:3])
    write_records(tmp_path / "out" / "meta.jsonl", records)
    assert load_records(tmp_path / "out" / "meta.jsonl") == records
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["meta.jsonl"]
