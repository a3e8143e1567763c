"""The caption writer on its own: batches, formats, one job among several, a dataset's own .txt kept."""

from __future__ import annotations

import json

import duckdb

from pools.events import JobState, ResourceDone
from pools.metadata import CaptionWriter, caption_text, open_table


def _table(tmp_path):
    path = tmp_path / "t.parquet"
    duckdb.connect().execute(
        f"COPY (SELECT * FROM (VALUES (1, 'g', 5, 'cat solo', 'miku', 'artist_x', 'highres'), "
        f"(2, 's', 9, 'dog', '', '', ''), (3, 'g', 1, 'bird', '', '', '')) "
        f"t(id, rating, score, tag_string_general, tag_string_character, tag_string_artist, tag_string_meta)) "
        f"TO '{path}'")
    return open_table(str(path))


def test_txt_captions_for_downloaded_and_present_files(tmp_path):
    dst = tmp_path / "out"
    dst.mkdir()
    with _table(tmp_path) as table:
        writer = CaptionWriter(table, str(dst), "txt")
        writer.on_event(ResourceDone(1, 1, "downloaded", ("1.png",), 10))
        writer.on_event(ResourceDone(1, 2, "skipped", ("2.jpg",), 10))
        writer.on_event(ResourceDone(1, 3, "downloaded", ("3.webp", "3.txt"), 10))  # the dataset's own 3.txt
        writer.on_event(ResourceDone(1, 99, "downloaded", ("99.png",), 10))  # not in the table
        writer.close()
    assert (dst / "1.txt").read_text() == "artist_x, miku, cat, solo, highres\n"
    assert (dst / "2.txt").read_text() == "dog\n"
    assert not (dst / "3.txt").exists() and not (dst / "99.txt").exists()
    assert writer.written == 2 and any("its own 3.txt" in e for e in writer.errors)
    assert not [p for p in dst.iterdir() if p.name.startswith(".caption")]


def test_json_captions_and_one_job_of_several(tmp_path):
    dst = tmp_path / "out"
    with _table(tmp_path) as table:
        writer = CaptionWriter(table, str(dst), "json", bound=False)
        writer.on_event(ResourceDone(7, 2, "downloaded", ("2.jpg",), 10))  # another job's
        writer.on_event(ResourceDone(8, 1, "downloaded", ("1.png",), 10))
        writer.bind(8)
        writer.on_event(JobState(8, "done"))
        writer._thread.join(30)
        assert not writer._thread.is_alive()  # its job ended: the writer stopped on its own
    record = json.loads((dst / "1.tags.json").read_text())
    assert record["tags"]["character"] == ["miku"] and record["rating"] == "g" and record["score"] == 5
    assert not (dst / "2.tags.json").exists()


def test_caption_text_order_and_duplicates():
    assert caption_text({"general": ["a", "b"], "artist": ["x"], "meta": ["a"]}) == "x, a, b\n"


def test_captions_carry_no_control_or_bidi_characters_and_are_readable_like_the_images(tmp_path, monkeypatch):
    """A hostile table's tags: an ESC that clears the screen on ``cat``, a BEL, C1 and a bidi override."""
    path = tmp_path / "evil.parquet"
    duckdb.connect().execute(
        "COPY (SELECT 1 AS id, 'g' AS rating, 5 AS score, "
        "'cat\x1b[2J \x07bell \u202eevil\u202c ok\x9b31m' AS tag_string_general) TO '" + str(path) + "'")
    dst = tmp_path / "out"
    dst.mkdir()
    import pools.files

    monkeypatch.setattr(pools.files, "_UMASK", 0o022)  # the usual one; the writer follows the user's
    for fmt in ("txt", "json"):
        with open_table(str(path)) as table:
            writer = CaptionWriter(table, str(dst), fmt)
            writer.on_event(ResourceDone(1, 1, "downloaded", ("1.png",), 10))
            writer.close()
    for name in ("1.txt", "1.tags.json"):
        body = (dst / name).read_text()
        assert not any(ord(c) < 0x20 and c not in "\n " or 0x7F <= ord(c) <= 0x9F or c in "\u202e\u202c"
                       for c in body), repr(body)
        assert (dst / name).stat().st_mode & 0o044 == 0o044  # group and others may read it, as the images
    assert (dst / "1.txt").read_text() == "cat[2J, bell, evil, ok31m\n"
