"""Following hourly files as a node writes them: complete lines only, rotation, restarts."""

from __future__ import annotations

from pathlib import Path

from stream.node_sources.follow import HourlyFollower, complete_lines, hour_files, hour_key


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(text)


def test_hour_files_in_time_order(tmp_path: Path) -> None:
    for relative in ("hourly/20260102/0", "hourly/20260101/10", "hourly/20260101/9"):
        write(tmp_path, relative, "")
    write(tmp_path, "hourly/20260101/notes.txt", "")
    write(tmp_path, "hourly/20260101/24", "")
    assert hour_files(tmp_path) == ["hourly/20260101/9", "hourly/20260101/10", "hourly/20260102/0"]
    assert hour_key("hourly/20260101/7") == ("20260101", 7)
    assert hour_key("daily/20260101/7") is None


def test_complete_lines() -> None:
    assert complete_lines(b"a\nb\npar") == ([b"a", b"b"], 4)
    assert complete_lines(b"partial") == ([], 0)


def test_partial_line_waits_until_complete(tmp_path: Path) -> None:
    write(tmp_path, "hourly/20260101/9", "one\ntw")
    follower = HourlyFollower(tmp_path, None, from_beginning=True)
    read = follower.read()
    assert read.lines == ["one"] and read.opened == ["hourly/20260101/9"]
    assert follower.read().lines == []
    write(tmp_path, "hourly/20260101/9", "o\nthree\n")
    assert follower.read().lines == ["two", "three"]


def test_rotation_across_hours_and_days(tmp_path: Path) -> None:
    write(tmp_path, "hourly/20260101/23", "a\n")
    follower = HourlyFollower(tmp_path, None, from_beginning=True)
    assert follower.read().lines == ["a"]
    write(tmp_path, "hourly/20260101/23", "b\n")
    write(tmp_path, "hourly/20260102/0", "c\n")
    read = follower.read()
    assert read.lines == ["b", "c"] and read.opened == ["hourly/20260102/0"]
    write(tmp_path, "hourly/20260102/0", "d\n")
    assert follower.read().lines == ["d"]


def test_unfinished_line_of_a_past_hour_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "hourly/20260101/9", "a\nhalf")
    write(tmp_path, "hourly/20260101/10", "b\n")
    read = HourlyFollower(tmp_path, None, from_beginning=True).read()
    assert read.lines == ["a", "b"]
    assert read.truncated == [("hourly/20260101/9", "half")]


def test_default_start_is_the_end_of_the_newest_file(tmp_path: Path) -> None:
    write(tmp_path, "hourly/20260101/9", "old\n")
    write(tmp_path, "hourly/20260101/10", "recent\n")
    follower = HourlyFollower(tmp_path, None)
    assert follower.read().lines == []
    write(tmp_path, "hourly/20260101/10", "new\n")
    assert follower.read().lines == ["new"]


def test_default_start_reads_the_line_being_written_whole(tmp_path: Path) -> None:
    write(tmp_path, "hourly/20260101/10", "done\nhal")
    follower = HourlyFollower(tmp_path, None)
    assert follower.read().lines == []
    write(tmp_path, "hourly/20260101/10", "f\nnext\n")
    assert follower.read().lines == ["half", "next"]


def test_waits_for_the_first_file(tmp_path: Path) -> None:
    follower = HourlyFollower(tmp_path, None, from_beginning=True)
    assert follower.read().lines == []
    write(tmp_path, "hourly/20260101/9", "first\n")
    assert follower.read().lines == ["first"]


def test_restart_resumes_at_the_saved_position(tmp_path: Path) -> None:
    state = tmp_path / "state" / "position.json"
    root = tmp_path / "fills"
    write(root, "hourly/20260101/9", "a\nb\n")
    first = HourlyFollower(root, state, from_beginning=True)
    assert first.read().lines == ["a", "b"]
    first.save()
    write(root, "hourly/20260101/9", "c\n")
    write(root, "hourly/20260101/10", "d\n")
    second = HourlyFollower(root, state, from_beginning=True)
    assert second.read().lines == ["c", "d"]


def test_position_of_another_directory_is_not_used(tmp_path: Path) -> None:
    state = tmp_path / "position.json"
    first, second = tmp_path / "node_fills", tmp_path / "node_fills_by_block"
    write(first, "hourly/20260101/9", "a\nb\n")
    write(second, "hourly/20260101/9", "c\nd\n")
    follower = HourlyFollower(first, state, from_beginning=True)
    follower.read()
    follower.save()
    assert HourlyFollower(second, state, from_beginning=True).read().lines == ["c", "d"]


def test_unsaved_lines_are_read_again(tmp_path: Path) -> None:
    state = tmp_path / "position.json"
    write(tmp_path, "hourly/20260101/9", "a\n")
    first = HourlyFollower(tmp_path, state, from_beginning=True)
    first.read()
    first.save()
    write(tmp_path, "hourly/20260101/9", "b\n")
    assert first.read().lines == ["b"]  # not saved: nothing delivered yet
    assert HourlyFollower(tmp_path, state).read().lines == ["b"]


def test_unreadable_position_file_is_ignored(tmp_path: Path) -> None:
    state = tmp_path / "position.json"
    state.write_text("{broken")
    write(tmp_path, "hourly/20260101/9", "a\n")
    assert HourlyFollower(tmp_path, state, from_beginning=True).read().lines == ["a"]


def test_pruned_file_is_skipped_to_the_next(tmp_path: Path) -> None:
    state = tmp_path / "position.json"
    state.write_text('{"file": "hourly/20260101/8", "offset": 100}')
    write(tmp_path, "hourly/20260101/9", "a\n")
    read = HourlyFollower(tmp_path, state).read()
    assert read.lines == ["a"] and read.missing == "hourly/20260101/8"


def test_long_lines_and_small_reads(tmp_path: Path) -> None:
    long_line = "x" * 5_000
    write(tmp_path, "hourly/20260101/9", f"{long_line}\nshort\n")
    follower = HourlyFollower(tmp_path, None, from_beginning=True)
    collected: list[str] = []
    for _ in range(10):
        collected.extend(follower.read(max_bytes=1_024).lines)
    assert collected == [long_line, "short"]
